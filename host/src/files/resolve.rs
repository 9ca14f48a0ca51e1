//! The path resolver: turns a user-supplied path (from a query string or a JSON body)
//! into a location confined to the file manager's root.
//!
//! Two checks, in order:
//! 1. lexical: the text must be a relative path of ordinary names. `..` and absolute
//!    paths are refused as escapes (403); NUL bytes, control characters, backslashes,
//!    empty or `.` components and over-long names are refused as malformed (400).
//! 2. on disk: the longest existing prefix is canonicalized (every symlink resolved)
//!    and must still lie under the canonical root; a dangling symlink on the way is
//!    refused, because where it would lead cannot be checked. A chain of links is
//!    judged by where it ends. Errors met below that prefix ("not a directory", a
//!    loop) are reported only once the prefix is known to be inside, so no answer
//!    describes anything outside the root.
//!
//! What this file does not do: open anything. The answer is only true at the moment it
//! was computed; `dir.rs` re-walks it with `O_NOFOLLOW` so a symlink swapped in
//! afterwards is refused by the kernel, not followed.

use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Linux `PATH_MAX`: longer input cannot name anything anyway.
pub const MAX_PATH_BYTES: usize = 4096;
/// Linux `NAME_MAX` for one component.
pub const MAX_NAME_BYTES: usize = 255;

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The text is not an acceptable path (400).
    #[error("path {path:?} is malformed: {reason}")]
    Malformed { path: String, reason: String },
    /// The path would leave the root (403).
    #[error("path {path:?} is refused: {reason}")]
    Escapes { path: String, reason: String },
    /// The root itself is unusable (missing, unreadable).
    #[error("the file manager's root {root} is unusable: {source}")]
    Root { root: PathBuf, source: io::Error },
    /// The file system answered with an error while resolving (not found is not one:
    /// missing targets resolve, with `exists = false`).
    #[error("{path:?}: {source}")]
    Io { path: String, source: io::Error },
}

/// Whether the last component is followed when it is a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    /// Read, write, list, stat, mkdir: act on what the path points to, which must be
    /// inside the root.
    Follow,
    /// Remove, move: act on the entry itself (deleting a link never touches its target).
    /// Only the parent directory has to resolve inside the root.
    NoFollow,
}

/// A path checked against the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The user's path, normalized (`""` for the root, `a/b` otherwise): what responses
    /// and messages show.
    pub rel: String,
    /// Where it really is, relative to the canonical root, with every symlink (and, for
    /// `Leaf::NoFollow`, every symlink but the last component) resolved. Only normal
    /// components; empty for the root.
    pub real: PathBuf,
    /// Whether the target existed when resolved (for `NoFollow`, the entry itself).
    pub exists: bool,
}

impl Resolved {
    /// The final component of `real`, or `None` for the root.
    pub fn leaf(&self) -> Option<OsString> {
        self.real.file_name().map(|n| n.to_os_string())
    }

    /// The directory holding the target, relative to the root.
    pub fn parent(&self) -> &Path {
        self.real.parent().unwrap_or(Path::new(""))
    }

    pub fn is_root(&self) -> bool {
        self.real.as_os_str().is_empty()
    }
}

/// Confines paths to one root. Cheap to build; build one per request so a root that is
/// replaced while the host runs is picked up.
#[derive(Debug, Clone)]
pub struct Resolver {
    root: PathBuf,
}

impl Resolver {
    /// `root` must exist; it is canonicalized once here.
    pub fn new(root: &Path) -> Result<Self, ResolveError> {
        let canonical =
            std::fs::canonicalize(root).map_err(|source| ResolveError::Root { root: root.into(), source })?;
        Ok(Self { root: canonical })
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn resolve(&self, user: &str, leaf: Leaf) -> Result<Resolved, ResolveError> {
        let parts = parse(user)?;
        let rel = parts.join("/");
        if parts.is_empty() {
            return Ok(Resolved { rel, real: PathBuf::new(), exists: true });
        }
        let lexical: PathBuf = parts.iter().collect();
        let (real, exists) = match leaf {
            Leaf::Follow => self.confine(&rel, &lexical)?,
            Leaf::NoFollow => {
                let parent = lexical.parent().unwrap_or(Path::new(""));
                let (mut real, _) = self.confine(&rel, parent)?;
                let name = &parts[parts.len() - 1];
                real.push(name);
                let exists = match std::fs::symlink_metadata(self.root.join(&real)) {
                    Ok(_) => true,
                    Err(e) if is_absent(&e) => false,
                    Err(source) => return Err(ResolveError::Io { path: rel, source }),
                };
                (real, exists)
            }
        };
        Ok(Resolved { rel, real, exists })
    }

    /// Canonicalizes the longest existing prefix of `root/lexical` and checks it stays
    /// under the root. Returns the real path relative to the root (the missing tail is
    /// appended unchanged: names that do not exist cannot be symlinks) and whether the
    /// whole path existed.
    fn confine(&self, rel: &str, lexical: &Path) -> Result<(PathBuf, bool), ResolveError> {
        let mut existing = self.root.join(lexical);
        let mut missing: Vec<OsString> = Vec::new();
        // An error below the longest resolvable prefix (a file used as a directory, a
        // symlink loop) is only reported once that prefix is known to be inside: an
        // answer like "not a directory" must not describe things outside the root.
        let mut failure: Option<io::Error> = None;
        loop {
            match std::fs::canonicalize(&existing) {
                Ok(real) => {
                    let Ok(inside) = real.strip_prefix(&self.root) else {
                        return Err(ResolveError::Escapes {
                            path: rel.into(),
                            reason: "it leads through a symlink to a place outside the root".into(),
                        });
                    };
                    if let Some(source) = failure {
                        return Err(ResolveError::Io { path: rel.into(), source });
                    }
                    let mut out = inside.to_path_buf();
                    let exists = missing.is_empty();
                    out.extend(missing.iter().rev());
                    return Ok((out, exists));
                }
                Err(e) => {
                    // canonicalize says "not found" for a symlink whose target is missing
                    // too: such a link could later be written through to anywhere.
                    if is_absent(&e) && std::fs::symlink_metadata(&existing).is_ok() {
                        return Err(ResolveError::Escapes {
                            path: rel.into(),
                            reason: format!(
                                "{} is a symlink to a missing target; where it leads cannot be checked",
                                display_rel(&self.root, &existing)
                            ),
                        });
                    }
                    if !is_absent(&e) && failure.is_none() {
                        failure = Some(e);
                    }
                    let (Some(name), true) = (existing.file_name(), existing != self.root) else {
                        // The root itself failed to resolve (removed while we looked).
                        return Err(ResolveError::Root {
                            root: self.root.clone(),
                            source: failure.unwrap_or_else(|| io::Error::from(io::ErrorKind::NotFound)),
                        });
                    };
                    missing.push(name.to_os_string());
                    existing.pop();
                }
            }
        }
    }
}

fn is_absent(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

fn display_rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// The lexical check: the components of an acceptable relative path. `""` and `"."`
/// name the root; one trailing `/` is tolerated (UIs add it to directories); anything
/// else odd is refused rather than guessed at, so a client bug surfaces as a clear 400.
pub fn parse(user: &str) -> Result<Vec<&str>, ResolveError> {
    let malformed = |reason: &str| ResolveError::Malformed { path: user.into(), reason: reason.into() };
    let escapes = |reason: &str| ResolveError::Escapes { path: user.into(), reason: reason.into() };
    if user.contains('\0') {
        return Err(malformed("it contains a NUL byte"));
    }
    if user.len() > MAX_PATH_BYTES {
        return Err(malformed(&format!("it is longer than {MAX_PATH_BYTES} bytes")));
    }
    if user.starts_with('/') {
        return Err(escapes("absolute paths are refused; give a path relative to the root"));
    }
    if user.is_empty() || user == "." {
        return Ok(Vec::new());
    }
    let trimmed = user.strip_suffix('/').unwrap_or(user);
    let mut parts = Vec::new();
    for part in trimmed.split('/') {
        match part {
            "" => return Err(malformed("it has an empty component (a doubled or trailing '/')")),
            ".." => return Err(escapes("'..' components are refused")),
            "." => return Err(malformed("'.' components are refused; give the path without them")),
            _ if part.contains('\\') => return Err(malformed("'\\' is not a separator here; use '/'")),
            _ if part.chars().any(char::is_control) => return Err(malformed("it contains a control character")),
            _ if part.len() > MAX_NAME_BYTES => {
                return Err(malformed(&format!("a component is longer than {MAX_NAME_BYTES} bytes")));
            }
            _ => parts.push(part),
        }
    }
    // Belt and braces: whatever the rules above let through must be plain names.
    debug_assert!(parts.iter().all(|p| matches!(Path::new(p).components().next(), Some(Component::Normal(_)))));
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    struct Tree {
        _dir: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    /// root/{a/b/, f, links...} and a sibling `outside/` with a secret.
    fn tree() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("f"), b"in").unwrap();
        std::fs::write(root.join("a/b/g"), b"in").unwrap();
        std::fs::write(outside.join("secret"), b"out").unwrap();
        symlink("a", root.join("in_rel")).unwrap();
        symlink(root.join("a/b"), root.join("in_abs")).unwrap();
        symlink("../a", root.join("a/side")).unwrap();
        symlink("b/g", root.join("a/to_g")).unwrap();
        symlink(&outside, root.join("out_dir")).unwrap();
        symlink(outside.join("secret"), root.join("out_file")).unwrap();
        symlink("../../..", root.join("a/b/up")).unwrap();
        symlink("..", root.join("a/parent")).unwrap();
        symlink("..", root.join("parent")).unwrap();
        symlink("/nonexistent/apollo-test", root.join("dangling")).unwrap();
        symlink("missing-in-root", root.join("dangling_in")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        Tree { _dir: dir, root, outside }
    }

    fn escapes(r: &Result<Resolved, ResolveError>) -> bool {
        matches!(r, Err(ResolveError::Escapes { .. }))
    }

    #[test]
    fn lexical_rules() {
        assert_eq!(parse("").unwrap(), Vec::<&str>::new());
        assert_eq!(parse(".").unwrap(), Vec::<&str>::new());
        assert_eq!(parse("a/b/").unwrap(), vec!["a", "b"]);
        assert_eq!(parse("über/日本/🦀").unwrap(), vec!["über", "日本", "🦀"]);
        assert_eq!(parse("...").unwrap(), vec!["..."]);
        for bad in ["..", "a/..", "../x", "a/../../etc/passwd", "/etc/passwd", "/", "//x"] {
            assert!(matches!(parse(bad), Err(ResolveError::Escapes { .. })), "{bad:?} should escape");
        }
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        for bad in ["a\0b", "a//b", "a/./b", "./a", "a\\..\\b", "a\nb", "a/b//", &long] {
            assert!(matches!(parse(bad), Err(ResolveError::Malformed { .. })), "{bad:?} should be malformed");
        }
        let msg = parse("a\0b").unwrap_err().to_string();
        assert!(msg.contains("NUL"), "{msg}");
        assert!(parse(&"a/".repeat(MAX_PATH_BYTES)).is_err());
    }

    #[test]
    fn symlinks_inside_are_followed_outside_refused() {
        let t = tree();
        let r = Resolver::new(&t.root).unwrap();
        let ok = |p: &str| r.resolve(p, Leaf::Follow).unwrap();
        assert_eq!(ok("in_rel/b/g").real, Path::new("a/b/g"));
        assert_eq!(ok("in_abs").real, Path::new("a/b"));
        assert_eq!(ok("a/side/side/b").real, Path::new("a/b"));
        assert_eq!(ok("a/to_g").real, Path::new("a/b/g"));
        assert_eq!(ok("a/parent/f").real, Path::new("f"), "'..' inside a link that stays inside is fine");
        let new = ok("a/new/deeper");
        assert_eq!((new.real.as_path(), new.exists), (Path::new("a/new/deeper"), false));
        // Judged by where it ends: out through `parent` and back in is inside.
        assert_eq!(ok("parent/root/f").real, Path::new("f"));
        for p in [
            "parent",
            "parent/outside/secret",
            "out_dir",
            "out_dir/secret",
            "out_dir/new",
            "out_file",
            "a/b/up",
            "a/b/up/x",
            "dangling",
            "dangling_in",
        ] {
            let res = r.resolve(p, Leaf::Follow);
            assert!(escapes(&res), "{p} should be refused, got {res:?}");
        }
        assert!(matches!(r.resolve("loop", Leaf::Follow), Err(ResolveError::Io { .. })));
        assert!(matches!(r.resolve("f/x", Leaf::Follow), Err(ResolveError::Io { .. })));
        // A file outside is not described ("not a directory"): the escape is reported.
        assert!(escapes(&r.resolve("out_file/x", Leaf::Follow)));
        assert!(escapes(&r.resolve("out_dir/secret/x", Leaf::Follow)));
        // The entry itself: a link is named, not followed; its parent must be inside.
        let link = r.resolve("out_dir", Leaf::NoFollow).unwrap();
        assert_eq!((link.real.as_path(), link.exists), (Path::new("out_dir"), true));
        assert!(r.resolve("dangling", Leaf::NoFollow).unwrap().exists);
        assert!(escapes(&r.resolve("out_dir/secret", Leaf::NoFollow)));
        assert!(r.resolve("", Leaf::NoFollow).unwrap().is_root());
        assert!(t.outside.join("secret").exists());
    }

    /// xorshift64*: deterministic, so a failure reproduces from the printed case.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    fn random_path(rng: &mut Rng) -> String {
        const PIECES: &[&str] = &[
            "..",
            ".",
            "",
            "a",
            "b",
            "f",
            "g",
            "a/b",
            "in_rel",
            "in_abs",
            "side",
            "to_g",
            "out_dir",
            "out_file",
            "up",
            "parent",
            "dangling",
            "dangling_in",
            "loop",
            "secret",
            "new",
            "é",
            "日本",
            "🦀",
            "a\0",
            "\\..",
            "..\\",
            " ",
            "...",
            "%2e%2e",
            "a\n",
            "~",
        ];
        let mut out = String::new();
        if rng.below(8) == 0 {
            out.push('/');
        }
        for i in 0..rng.below(7) {
            if i > 0 {
                out.push('/');
            }
            match rng.below(12) {
                0 => out.push_str(&"x".repeat(200 + rng.below(120))),
                1 => out.extend(
                    (0..1 + rng.below(4)).map(|_| char::from_u32(0x20 + rng.below(0x2FF) as u32).unwrap_or('?')),
                ),
                _ => out.push_str(rng.pick(PIECES)),
            }
        }
        if rng.below(6) == 0 {
            out.push('/');
        }
        out
    }

    /// Thousands of generated paths: whatever is accepted really lies inside the root,
    /// checked independently of the resolver (canonicalize the result again, or its
    /// nearest existing ancestor), and the lexical escapes are never accepted.
    #[test]
    fn generated_paths_never_resolve_outside() {
        let t = tree();
        let r = Resolver::new(&t.root).unwrap();
        let root = r.root().to_path_buf();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (mut accepted, mut refused) = (0usize, 0usize);
        for case in 0..6000 {
            let path = random_path(&mut rng);
            let lexically_bad = path.contains('\0')
                || path.starts_with('/')
                || path.split('/').any(|c| c == ".." || c == ".") && path != ".";
            for mode in [Leaf::Follow, Leaf::NoFollow] {
                let result = r.resolve(&path, mode);
                let Ok(resolved) = result else {
                    refused += 1;
                    continue;
                };
                accepted += 1;
                assert!(!lexically_bad, "case {case}: {path:?} accepted in {mode:?}");
                assert!(
                    resolved.real.components().all(|c| matches!(c, Component::Normal(_))),
                    "case {case}: {path:?} -> {resolved:?}"
                );
                let full = root.join(&resolved.real);
                // The part that has to be symlink-free: all of it when following, the
                // parent when not.
                let checked = match mode {
                    Leaf::Follow => full.clone(),
                    Leaf::NoFollow if !resolved.is_root() => full.parent().unwrap().to_path_buf(),
                    Leaf::NoFollow => full.clone(),
                };
                let mut probe = checked.as_path();
                let canonical = loop {
                    match std::fs::canonicalize(probe) {
                        Ok(c) => break c,
                        Err(_) => probe = probe.parent().unwrap(),
                    }
                };
                assert!(canonical.starts_with(&root), "case {case}: {path:?} ({mode:?}) reaches {canonical:?}");
                assert_eq!(canonical, probe, "case {case}: {path:?} ({mode:?}): the real path still has a symlink");
                assert!(!checked.starts_with(&t.outside));
            }
        }
        assert!(accepted > 1000 && refused > 1000, "generator too one-sided: {accepted} accepted, {refused} refused");
    }
}
