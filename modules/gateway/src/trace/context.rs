//! The trace context a request arrives with: W3C `traceparent` and `tracestate` read
//! the way contract §3.6 says a gateway must (an invalid or absent `traceparent` starts
//! a new trace and drops `tracestate`; higher versions are read at version 00's offsets).

use std::cell::RefCell;

use http::{HeaderMap, HeaderName};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

/// Trace flag: the caller may have recorded this trace (W3C `sampled`).
pub const FLAG_SAMPLED: u8 = 0x01;
/// Trace flag (W3C level 2): the trace id's rightmost 7 bytes are random.
pub const FLAG_RANDOM_TRACE_ID: u8 = 0x02;
/// The flags this gateway knows; the spec says the others go out as zero.
const KNOWN_FLAGS: u8 = FLAG_SAMPLED | FLAG_RANDOM_TRACE_ID;

/// The header names (lower case, as they are sent).
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";
/// The same names as map keys: a lookup by `&str` parses the name first (about two
/// thirds of its cost), one by a `HeaderName` only hashes it.
pub static TRACEPARENT_NAME: HeaderName = HeaderName::from_static(TRACEPARENT);
static TRACESTATE_NAME: HeaderName = HeaderName::from_static(TRACESTATE);

/// `traceparent` of version 00 is exactly this long; higher versions at least this.
const TRACEPARENT_LEN: usize = 55;
/// The spec's ceiling on `tracestate` list members; more and the header is discarded.
const TRACESTATE_MAX_MEMBERS: usize = 32;
/// What the spec asks every participant to propagate at least; above it entries are
/// trimmed (the longest first, then from the right).
const TRACESTATE_KEEP_CHARS: usize = 512;
/// Entries longer than this are the first to go when trimming.
const TRACESTATE_LONG_MEMBER: usize = 128;

/// Where a request's trace stands when it reaches the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    /// The caller's span; `None` when the gateway started the trace.
    pub parent_id: Option<[u8; 8]>,
    /// Only the known bits (`sampled`, `random-trace-id`). For a trace started here
    /// `sampled` is clear: the tracer decides it by its sample ratio.
    pub flags: u8,
    /// The caller's `tracestate`, combined and checked; never set for a new trace.
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// Reads `traceparent`/`tracestate` from a request. Never fails: a missing, repeated
    /// or invalid `traceparent` gives a new trace (random id, `random-trace-id` set).
    pub fn from_headers(headers: &HeaderMap) -> TraceContext {
        let mut values = headers.get_all(&TRACEPARENT_NAME).iter();
        let parsed = match (values.next(), values.next()) {
            (Some(only), None) => parse_traceparent(only.as_bytes()),
            _ => None,
        };
        match parsed {
            Some((trace_id, parent_id, flags)) => {
                TraceContext { trace_id, parent_id: Some(parent_id), flags, tracestate: combined_tracestate(headers) }
            }
            None => TraceContext::new_trace(),
        }
    }

    /// A trace started here: random non-zero id, `random-trace-id` set, not yet sampled.
    pub fn new_trace() -> TraceContext {
        TraceContext { trace_id: random_nonzero(), parent_id: None, flags: FLAG_RANDOM_TRACE_ID, tracestate: None }
    }

    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    pub fn is_sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }
}

thread_local! {
    /// Trace and span ids must be unique and random, not secret: a small generator per
    /// thread, seeded from the OS (`ThreadRng`'s ChaCha refills cost 1 % of a request).
    static IDS: RefCell<SmallRng> = RefCell::new(SmallRng::from_os_rng());
}

/// Random bytes that are not all zero (all-zero ids are invalid on the wire).
pub(crate) fn random_nonzero<const N: usize>() -> [u8; N] {
    IDS.with_borrow_mut(|ids| {
        let mut bytes = [0u8; N];
        loop {
            ids.fill_bytes(&mut bytes);
            if bytes.iter().any(|&b| b != 0) {
                return bytes;
            }
        }
    })
}

/// Lower-case hex, the only case `traceparent` allows.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// Decodes lower-case hex only: upper case makes a `traceparent` invalid.
fn unhex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

/// `version-traceid-parentid-flags`, or `None` when invalid. Surrounding spaces/tabs
/// (optional whitespace in HTTP) are tolerated.
fn parse_traceparent(raw: &[u8]) -> Option<([u8; 16], [u8; 8], u8)> {
    let value = raw.trim_ascii();
    let [version] = unhex::<1>(value.get(..2)?)?;
    if version == 0xff {
        return None;
    }
    // Version 00 is exactly 55 chars. A later version may append fields, but only
    // after a `-`; its first four fields sit at version 00's offsets.
    let length_ok = if version == 0 {
        value.len() == TRACEPARENT_LEN
    } else {
        value.len() == TRACEPARENT_LEN || (value.len() > TRACEPARENT_LEN && value[TRACEPARENT_LEN] == b'-')
    };
    if !length_ok || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let trace_id = unhex::<16>(&value[3..35])?;
    let parent_id = unhex::<8>(&value[36..52])?;
    let [flags] = unhex::<1>(&value[53..55])?;
    if trace_id == [0; 16] || parent_id == [0; 8] {
        return None;
    }
    Some((trace_id, parent_id, flags & KNOWN_FLAGS))
}

/// Every `tracestate` header joined with commas, checked member by member. Any
/// invalid member, a repeated key or more than 32 members discards the whole value
/// (the spec's test suite expects exactly that); empty members are skipped.
fn combined_tracestate(headers: &HeaderMap) -> Option<String> {
    let mut members: Vec<&str> = Vec::new();
    for value in headers.get_all(&TRACESTATE_NAME) {
        let text = value.to_str().ok()?;
        for member in text.split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            let (key, member_value) = member.split_once('=')?;
            if !valid_key(key) || !valid_value(member_value) {
                return None;
            }
            if members.iter().any(|m| m.split_once('=').is_some_and(|(k, _)| k == key)) {
                return None;
            }
            members.push(member);
        }
    }
    if members.is_empty() || members.len() > TRACESTATE_MAX_MEMBERS {
        return None;
    }
    trim_tracestate(&mut members);
    Some(members.join(","))
}

/// Keeps the joined length within what the spec requires us to propagate: entries
/// over 128 chars go first, then entries from the right.
fn trim_tracestate(members: &mut Vec<&str>) {
    let joined_len = |m: &[&str]| m.iter().map(|s| s.len()).sum::<usize>() + m.len().saturating_sub(1);
    while joined_len(members) > TRACESTATE_KEEP_CHARS {
        match members.iter().position(|m| m.len() > TRACESTATE_LONG_MEMBER) {
            Some(long) => members.remove(long),
            None => members.pop().unwrap_or_default(),
        };
    }
}

/// The characters a key may continue with after its first.
fn key_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'*' | b'/')
}

/// `simple-key` (lcalpha then ≤ 255 key chars) or `tenant@system` (tenant ≤ 241
/// chars starting with lcalpha/digit, system ≤ 14 chars starting with lcalpha).
fn valid_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    match key.split_once('@') {
        None => {
            bytes.len() <= 256
                && bytes.first().is_some_and(u8::is_ascii_lowercase)
                && bytes.iter().all(|&c| key_char(c))
        }
        Some((tenant, system)) => {
            let (tenant, system) = (tenant.as_bytes(), system.as_bytes());
            (1..=241).contains(&tenant.len())
                && (tenant[0].is_ascii_lowercase() || tenant[0].is_ascii_digit())
                && tenant.iter().all(|&c| key_char(c))
                && (1..=14).contains(&system.len())
                && system[0].is_ascii_lowercase()
                && system.iter().all(|&c| key_char(c))
        }
    }
}

/// 1–256 printable ASCII chars without `,` or `=`, spaces allowed but not last.
fn valid_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    let printable = |c: u8| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=';
    (1..=256).contains(&bytes.len()) && bytes.iter().all(|&c| printable(c)) && bytes.last() != Some(&b' ')
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    const PARENT: &str = "b7ad6b7169203331";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn context(traceparent: &str) -> TraceContext {
        TraceContext::from_headers(&headers(&[("traceparent", traceparent), ("tracestate", "congo=t61rcWkgMzE")]))
    }

    /// A restarted trace: fresh id, no parent, `random-trace-id` only, tracestate gone.
    fn assert_restarted(ctx: &TraceContext) {
        assert_ne!(ctx.trace_id_hex(), TRACE);
        assert_ne!(ctx.trace_id, [0; 16]);
        assert_eq!(ctx.parent_id, None);
        assert_eq!(ctx.flags, FLAG_RANDOM_TRACE_ID);
        assert_eq!(ctx.tracestate, None);
    }

    #[test]
    fn the_specs_example_is_kept() {
        let ctx = context(&format!("00-{TRACE}-{PARENT}-01"));
        assert_eq!(ctx.trace_id_hex(), TRACE);
        assert_eq!(ctx.parent_id.map(|p| hex(&p)), Some(PARENT.to_string()));
        assert_eq!(ctx.flags, FLAG_SAMPLED);
        assert!(ctx.is_sampled());
        assert_eq!(ctx.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
    }

    #[test]
    fn header_name_case_and_surrounding_whitespace_do_not_matter() {
        let map = headers(&[("TraceParent", &format!(" 00-{TRACE}-{PARENT}-00\t"))]);
        let ctx = TraceContext::from_headers(&map);
        assert_eq!(ctx.trace_id_hex(), TRACE);
        assert!(!ctx.is_sampled());
    }

    #[test]
    fn unknown_flags_are_zeroed_and_random_trace_id_is_kept() {
        assert_eq!(context(&format!("00-{TRACE}-{PARENT}-ff")).flags, 0x03);
        assert_eq!(context(&format!("00-{TRACE}-{PARENT}-02")).flags, FLAG_RANDOM_TRACE_ID);
    }

    #[test]
    fn invalid_traceparents_restart_the_trace() {
        let invalid = [
            format!("00-{}-{PARENT}-01", "0".repeat(32)),
            format!("00-{TRACE}-{}-01", "0".repeat(16)),
            format!("00-{}-{PARENT}-01", TRACE.to_uppercase()),
            format!("00-{TRACE}-{}-01", PARENT.to_uppercase()),
            format!("00-{TRACE}-{PARENT}-0A"),
            format!("ff-{TRACE}-{PARENT}-01"),
            format!("0G-{TRACE}-{PARENT}-01"),
            format!("0A-{TRACE}-{PARENT}-01"),
            format!("00-{TRACE}-{PARENT}-01-"),
            format!("00-{TRACE}-{PARENT}-01-extra"),
            format!("00-{TRACE}-{PARENT}-1"),
            format!("00-{TRACE}-{PARENT}"),
            format!("00-{}-{PARENT}-01", &TRACE[1..]),
            format!("00_{TRACE}_{PARENT}_01"),
            format!("00-{TRACE}-{PARENT}-0x"),
            format!("cc-{TRACE}-{PARENT}-01.what-the-future-will-not-be-like"),
            format!("cc-{TRACE}-{PARENT}-0"),
            "00".to_string(),
            String::new(),
            "garbage".to_string(),
        ];
        for traceparent in invalid {
            let ctx = context(&traceparent);
            assert_restarted(&ctx);
        }
    }

    #[test]
    fn absent_or_repeated_traceparent_restarts_the_trace() {
        assert_restarted(&TraceContext::from_headers(&headers(&[("tracestate", "congo=t61rcWkgMzE")])));
        let twice = format!("00-{TRACE}-{PARENT}-01");
        let map = headers(&[("traceparent", &twice), ("traceparent", &twice), ("tracestate", "a=1")]);
        assert_restarted(&TraceContext::from_headers(&map));
    }

    #[test]
    fn higher_versions_are_read_at_version_00_offsets() {
        let exact = context(&format!("cc-{TRACE}-{PARENT}-01"));
        assert_eq!(exact.trace_id_hex(), TRACE);
        let extended = context(&format!("cc-{TRACE}-{PARENT}-01-what-the-future-will-be-like"));
        assert_eq!(extended.trace_id_hex(), TRACE);
        assert_eq!(extended.parent_id.map(|p| hex(&p)), Some(PARENT.to_string()));
        assert_eq!(extended.flags, FLAG_SAMPLED);
        assert_eq!(extended.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
        // All-zero ids stay invalid in any version.
        assert_restarted(&context(&format!("01-{}-{PARENT}-01-x", "0".repeat(32))));
    }

    #[test]
    fn new_traces_are_random_and_flagged_so() {
        let a = TraceContext::new_trace();
        let b = TraceContext::new_trace();
        assert_ne!(a.trace_id, b.trace_id);
        assert_eq!(a.flags, FLAG_RANDOM_TRACE_ID);
        assert_eq!(a.trace_id_hex().len(), 32);
        assert!(a.trace_id_hex().bytes().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
    }

    fn tracestate(values: &[&str]) -> Option<String> {
        let traceparent = format!("00-{TRACE}-{PARENT}-01");
        let mut pairs = vec![("traceparent", traceparent.as_str())];
        pairs.extend(values.iter().map(|v| ("tracestate", *v)));
        TraceContext::from_headers(&headers(&pairs)).tracestate
    }

    #[test]
    fn repeated_tracestate_headers_are_combined_with_commas() {
        assert_eq!(
            tracestate(&["rojo=00f067aa0ba902b7", "congo=t61rcWkgMzE"]).as_deref(),
            Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
        );
        assert_eq!(tracestate(&["a=1 , ,\tb=2", "c=3"]).as_deref(), Some("a=1,b=2,c=3"));
        assert_eq!(
            tracestate(&["tenant@vendor=v", "7tenant@v-x=y z"]).as_deref(),
            Some("tenant@vendor=v,7tenant@v-x=y z")
        );
        assert_eq!(tracestate(&[]), None);
        assert_eq!(tracestate(&[" , "]), None);
    }

    #[test]
    fn an_invalid_tracestate_is_dropped_whole() {
        assert_eq!(tracestate(&["foo=1,foo=2"]), None, "repeated key");
        assert_eq!(tracestate(&["foo=1", "foo=2"]), None, "repeated key across headers");
        assert_eq!(tracestate(&["Foo=1"]), None, "upper-case key");
        assert_eq!(tracestate(&["1foo=1"]), None, "simple key starting with a digit");
        assert_eq!(tracestate(&["foo=1,bar"]), None, "member without =");
        assert_eq!(tracestate(&["foo=a=b"]), None, "= in the value");
        assert_eq!(tracestate(&["foo="]), None, "empty value");
        assert_eq!(tracestate(&[&format!("{}=1", "k".repeat(257))]), None, "key too long");
        assert_eq!(tracestate(&[&format!("k={}", "v".repeat(257))]), None, "value too long");
        assert_eq!(tracestate(&["t@toolongvendorname=1"]), None, "system id too long");
    }

    #[test]
    fn more_than_32_members_drop_the_tracestate() {
        let members: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
        assert_eq!(tracestate(&[&members.join(",")]).map(|s| s.split(',').count()), Some(32));
        let too_many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert_eq!(tracestate(&[&too_many.join(",")]), None);
    }

    #[test]
    fn long_tracestates_lose_long_entries_first_then_from_the_right() {
        let long = format!("long={}", "x".repeat(200));
        let mid: Vec<String> = (0..20).map(|i| format!("k{i:02}={}", "v".repeat(26))).collect();
        let mut all = vec![mid[0].clone(), long.clone()];
        all.extend(mid[1..].iter().cloned());
        let kept = tracestate(&[&all.join(",")]).unwrap();
        assert!(kept.len() <= TRACESTATE_KEEP_CHARS);
        assert!(!kept.contains("long="), "the entry over 128 chars goes first");
        assert!(kept.starts_with("k00="), "the leftmost entries stay");
        let kept_members: Vec<&str> = kept.split(',').collect();
        assert_eq!(kept_members, mid[..kept_members.len()].iter().map(String::as_str).collect::<Vec<_>>());
        // Exactly 512 chars is propagated untouched.
        let fits = format!("a={}", "v".repeat(256 - 2 - 1)) + "," + &format!("b={}", "w".repeat(512 - 256 - 2));
        assert_eq!(fits.len(), 512);
        assert_eq!(tracestate(&[&fits]).as_deref(), Some(fits.as_str()));
    }
}
