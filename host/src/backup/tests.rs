//! Round trips through the archive writer and the extractor, and the refusals, without
//! a running host (the integration tests in tests/tests/it/backups.rs drive the real one).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::extract::{Targets, extract};
use super::*;
use crate::store::{SqliteStore, Store};

fn layout(root: &Path) -> Layout {
    Layout {
        app_root: root.join("app"),
        app_manager: root.join("manager"),
        backup_dir: root.join("backup"),
        data_dir: root.join("data"),
    }
}

async fn snapshot(root: &Path) -> std::path::PathBuf {
    let store = SqliteStore::open(&root.join("data/apollo.db")).unwrap();
    store.put_setting("k", "v").await.unwrap();
    let snap = root.join("backup/.snap.db.partial");
    std::fs::create_dir_all(root.join("backup")).unwrap();
    store.snapshot_to(&snap).await.unwrap();
    assert!(store.snapshot_to(&snap).await.is_err(), "an existing destination is never overwritten");
    snap
}

#[tokio::test]
async fn archive_round_trip_keeps_files_modes_and_links_and_skips_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let l = layout(root);
    std::fs::create_dir_all(l.app_root.join(".octopus")).unwrap();
    std::fs::create_dir_all(l.app_root.join("web/static")).unwrap();
    std::fs::write(l.app_root.join(".octopus/web.pig"), "{}").unwrap();
    std::fs::write(l.app_root.join("web/static/index.html"), "hello").unwrap();
    std::os::unix::fs::symlink("static/index.html", l.app_root.join("web/current")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(l.app_root.join("web/control.sock")).unwrap();
    std::fs::create_dir_all(l.app_manager.join("web")).unwrap();
    std::fs::write(l.app_manager.join("web/start.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(l.app_manager.join("web/start.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();

    let snap = snapshot(root).await;
    let backup_id = id::new_id(chrono::Utc::now());
    write_backup(&l, &backup_id, vec!["web".into()], &snap).unwrap();
    let listed = catalog::list(&l.backup_dir).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].services, vec!["web".to_string()]);
    assert_eq!(listed[0].files, 3);
    let archive = catalog::locate(&l.backup_dir, &backup_id).unwrap();
    let mode = std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "backups hold password and token hashes");
    let manifest = manifest::read_manifest(&archive).unwrap();
    assert_eq!((manifest.app.files, manifest.app.symlinks, manifest.app.skipped), (2, 1, 1));

    let (app, manager) = (root.join("stage-app"), root.join("stage-manager"));
    std::fs::create_dir(&app).unwrap();
    std::fs::create_dir(&manager).unwrap();
    let out = extract(&backup_id, &archive, Targets { app: &app, manager: &manager }).unwrap();
    assert_eq!((out.files, out.symlinks), (3, 1));
    assert_eq!(std::fs::read_to_string(app.join("web/static/index.html")).unwrap(), "hello");
    assert_eq!(std::fs::read_link(app.join("web/current")).unwrap(), Path::new("static/index.html"));
    assert!(!app.join("web/control.sock").exists());
    assert!(app.join(".octopus/web.pig").is_file());
    let mode = std::fs::metadata(manager.join("web/start.sh")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o750);
}

/// name, type, data, link target
type Crafted<'a> = (&'a str, tar::EntryType, &'a [u8], &'a str);

/// A gzip'd tar with raw header names, so tests can write what the tar crate refuses.
fn crafted(path: &Path, entries: &[Crafted<'_>]) {
    let file = std::fs::File::create(path).unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()));
    for (name, kind, data, link) in entries {
        let mut header = tar::Header::new_gnu();
        let raw = &mut header.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        if !link.is_empty() {
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_cksum();
        tar.append(&header, *data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

fn manifest_json() -> Vec<u8> {
    serde_json::to_vec(&Manifest {
        version: manifest::FORMAT_VERSION,
        id: "apollo-x".into(),
        created_at: "2024-01-01T00:00:00.000Z".into(),
        host_version: "0".into(),
        services: vec![],
        app: TreeStats::default(),
        manager: TreeStats::default(),
        store: StoreSnapshot { path: manifest::STORE_ENTRY.into(), bytes: 0, sha256: String::new() },
    })
    .unwrap()
}

#[test]
fn traversal_and_link_planting_are_refused_and_write_nothing_outside() {
    use tar::EntryType::{Directory, Regular, Symlink};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (app, manager) = (root.join("s/app"), root.join("s/manager"));
    let manifest = manifest_json();
    let cases: Vec<(&str, Vec<Crafted<'_>>)> = vec![
        ("escape", vec![("manifest.json", Regular, &manifest, ""), ("../escape", Regular, b"x", "")]),
        ("nested", vec![("manifest.json", Regular, &manifest, ""), ("app/../../escape", Regular, b"x", "")]),
        ("absolute", vec![("manifest.json", Regular, &manifest, ""), ("/tmp/apollo-escape", Regular, b"x", "")]),
        ("no manifest", vec![("app/", Directory, b"", ""), ("app/a", Regular, b"x", "")]),
        ("other top", vec![("manifest.json", Regular, &manifest, ""), ("etc/passwd", Regular, b"x", "")]),
        (
            "planted link",
            vec![
                ("manifest.json", Regular, &manifest, ""),
                ("app/x", Symlink, b"", "/"),
                ("app/x/escape", Regular, b"x", ""),
            ],
        ),
        ("hard link", vec![("manifest.json", Regular, &manifest, ""), ("app/h", tar::EntryType::Link, b"", "app/a")]),
    ];
    for (name, entries) in cases {
        let archive = root.join(format!("{}.tar.gz", name.replace(' ', "-")));
        crafted(&archive, &entries);
        for d in [&app, &manager] {
            let _ = std::fs::remove_dir_all(d);
            std::fs::create_dir_all(d).unwrap();
        }
        let err = extract("apollo-x", &archive, Targets { app: &app, manager: &manager }).unwrap_err();
        assert!(matches!(err, BackupError::Refused { .. }), "{name}: {err}");
        assert!(!root.join("escape").exists() && !root.join("s/escape").exists(), "{name}: wrote outside");
        assert!(!Path::new("/tmp/apollo-escape").exists(), "{name}");
    }
}

#[test]
fn retention_keeps_the_newest_and_ignores_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> =
        (0..5).map(|i| id::new_id(chrono::DateTime::from_timestamp_millis(1_700_000_000_000 + i).unwrap())).collect();
    for i in &ids {
        std::fs::write(dir.path().join(id::file_name(i)), "x").unwrap();
    }
    std::fs::write(dir.path().join("notes.txt"), "keep me").unwrap();
    let removed = catalog::prune(dir.path(), 2).unwrap();
    assert_eq!(removed, vec![ids[2].clone(), ids[1].clone(), ids[0].clone()]);
    assert_eq!(catalog::ids(dir.path()).unwrap(), vec![ids[4].clone(), ids[3].clone()]);
    assert!(dir.path().join("notes.txt").exists());
    assert!(matches!(catalog::locate(dir.path(), "apollo-../x"), Err(BackupError::BadId(_))));
    assert!(matches!(catalog::locate(dir.path(), &ids[0]), Err(BackupError::NotFound(_))));
    let listed = catalog::list(dir.path()).unwrap();
    assert!(listed[0].problem.is_some(), "a file that is not an archive is listed with its problem");
}
