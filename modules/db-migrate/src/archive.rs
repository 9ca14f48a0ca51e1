//! The JSON archive of a whole store: `export` walks every collection page by page
//! and records each collection's count and checksum next to its records; `import`
//! checks an archive completely (format, known collections, counts and checksums)
//! before it writes anything, then upserts page by page, so a damaged or edited
//! archive is refused whole and a re-run import is harmless. It never deletes records
//! the target already has.

use serde_json::{Map, Value, json};

use crate::store::{COLLECTIONS, Failure, LEGACY_COLLECTIONS, StoreClient};
use crate::target::Target;
use plugin_api::digest::RecordDigest;

pub const FORMAT: &str = "apollo-store-archive";
pub const VERSION: u64 = 1;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub async fn export(client: &StoreClient, target: &Target, page_size: u32) -> Result<Value, Failure> {
    let info = client.info(target).await?;
    let mut collections = Map::new();
    for collection in COLLECTIONS {
        let mut records = Vec::new();
        let mut digest = RecordDigest::default();
        let mut after = None;
        loop {
            let page = client.page(target, collection, after.as_ref(), page_size).await?;
            for record in &page.records {
                digest.add(record);
            }
            records.extend(page.records);
            if !page.more {
                break;
            }
            after = page.last;
        }
        collections
            .insert(collection.into(), json!({"count": digest.count, "checksum": digest.hex(), "records": records}));
    }
    Ok(json!({
        "format": FORMAT,
        "version": VERSION,
        "created_at_ms": now_ms(),
        "source": {
            "target": target.description,
            "backend": info.backend,
            "schema_version": info.schema_version,
        },
        "collections": collections,
    }))
}

/// Checks an archive before anything is written; returns `(collection, records)`.
pub fn verify(archive: &Value) -> Result<Vec<(&'static str, &Vec<Value>)>, String> {
    if archive["format"] != FORMAT {
        return Err(format!("not an {FORMAT} (\"format\" is {})", archive["format"]));
    }
    if archive["version"].as_u64() != Some(VERSION) {
        return Err(format!("archive version {} is not one this module reads ({VERSION})", archive["version"]));
    }
    let Some(sections) = archive["collections"].as_object() else {
        return Err("archive has no \"collections\" object".into());
    };
    let known = |k: &str| COLLECTIONS.contains(&k) || LEGACY_COLLECTIONS.contains(&k);
    if let Some(unknown) = sections.keys().find(|k| !known(k)) {
        return Err(format!("archive collection {unknown:?} is not one of {}", COLLECTIONS.join(", ")));
    }
    let mut out = Vec::new();
    for collection in COLLECTIONS.into_iter().chain(LEGACY_COLLECTIONS) {
        let Some(section) = sections.get(collection) else { continue };
        let Some(records) = section["records"].as_array() else {
            return Err(format!("archive collection {collection}: \"records\" is not a list"));
        };
        let mut digest = RecordDigest::default();
        records.iter().for_each(|r| digest.add(r));
        let (count, checksum) = (section["count"].as_u64(), section["checksum"].as_str());
        if count != Some(digest.count) || checksum != Some(digest.hex().as_str()) {
            return Err(format!(
                "archive collection {collection} does not match its checksum (says {} records / {}, holds {} / {}): \
                 the file is damaged or was edited",
                section["count"],
                section["checksum"],
                digest.count,
                digest.hex()
            ));
        }
        out.push((collection, records));
    }
    Ok(out)
}

/// Verifies, then (unless `dry_run`) upserts every record into `target`.
pub async fn import(
    client: &StoreClient,
    target: &Target,
    archive: &Value,
    dry_run: bool,
    page_size: u32,
) -> Result<Value, Failure> {
    let sections = verify(archive).map_err(Failure::bad_request)?;
    let mut report = Map::new();
    for (collection, records) in sections {
        let mut written = 0;
        if !dry_run {
            for chunk in records.chunks(page_size.max(1) as usize) {
                written += client.import(target, collection, chunk).await?;
            }
        }
        report.insert(collection.into(), json!({"records": records.len(), "written": written}));
    }
    Ok(json!({"target": target.description, "dry_run": dry_run, "verified": true, "collections": report}))
}
