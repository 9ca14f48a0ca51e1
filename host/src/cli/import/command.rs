//! From a command as another supervisor wrote it to the model's argv and cwd.
//!
//! A command string is split like a POSIX shell splits words (the `shlex` crate), and
//! run without a shell. When the text uses what only a shell does (pipes, `&&`,
//! redirections, `$VAR`, `` ` ``, `~`), it is wrapped explicitly in
//! `["/bin/sh", "-c", text]` and the caller reports that: the text is the operator's own
//! configuration, never remote input. A working directory outside the service's own
//! directory (which `run_data.cwd` may not leave) is entered with `env --chdir`.
//! Nothing here touches the file system: paths are compared as written.

use std::path::{Component, Path, PathBuf};

/// The shell used for commands that need one.
pub const SHELL: &str = "/bin/sh";
/// GNU coreutils' `env`, whose `--chdir` enters a directory without a shell.
pub const ENV: &str = "/usr/bin/env";

/// A command's argv and, when it had to be wrapped in a shell, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argv {
    pub argv: Vec<String>,
    pub shell_because: Option<String>,
}

/// The shell features a command line uses, in order of first use; empty when plain
/// word splitting gives the same result.
pub fn shell_features(text: &str) -> Vec<&'static str> {
    let mut found: Vec<&'static str> = Vec::new();
    let mut add = |f: &'static str| {
        if !found.contains(&f) {
            found.push(f);
        }
    };
    let mut chars = text.chars().peekable();
    let (mut single, mut double) = (false, false);
    let mut word_start = true;
    while let Some(c) = chars.next() {
        if single {
            single = c != '\'';
            continue;
        }
        match c {
            '\\' => {
                chars.next();
            }
            '\'' if !double => single = true,
            '"' => double = !double,
            '$' => add("variable expansion ($)"),
            '`' => add("command substitution (`)"),
            _ if double => {}
            '|' => add("a pipe (|)"),
            '&' => add("&& or a background job (&)"),
            ';' => add("a command list (;)"),
            '<' | '>' => add("a redirection (< >)"),
            '(' | ')' => add("a subshell (( ))"),
            '~' if word_start => add("home expansion (~)"),
            _ => {}
        }
        word_start = c.is_whitespace();
    }
    found
}

/// Splits a command line into argv, or wraps it in `/bin/sh -c` when it needs a shell.
pub fn from_command_line(text: &str) -> Result<Argv, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("is empty: give the program to run".into());
    }
    let features = shell_features(text);
    if !features.is_empty() {
        return Ok(Argv {
            argv: vec![SHELL.into(), "-c".into(), text.into()],
            shell_because: Some(features.join(", ")),
        });
    }
    match shlex::split(text) {
        Some(words) if !words.is_empty() => Ok(Argv { argv: words, shell_because: None }),
        Some(_) => Err("is empty: give the program to run".into()),
        None => Err(format!("{text:?} has an unbalanced quote")),
    }
}

/// Splits an argument string (PM2's `args` as a string) into words, without a shell.
pub fn split_words(text: &str) -> Result<Vec<String>, String> {
    shlex::split(text).ok_or_else(|| format!("{text:?} has an unbalanced quote"))
}

/// Where a command runs: `cwd` for the model, and the argv to use (prefixed with
/// `env --chdir=DIR` when `directory` is outside `service_dir`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub argv: Vec<String>,
    pub cwd: String,
    /// Set when `env --chdir` was needed: the message for the operator.
    pub note: Option<String>,
}

/// Places `argv` in `directory` (absolute, or relative to `base`). Inside the
/// service's directory it becomes `run_data.cwd`; elsewhere the command is prefixed
/// with `env --chdir=DIR`, because `run_data.cwd` may not leave the service's directory.
pub fn place(argv: Vec<String>, directory: &str, base: &Path, service_dir: &Path) -> Placement {
    let dir = normalize(&base.join(directory));
    let service_dir = normalize(service_dir);
    if let Ok(inside) = dir.strip_prefix(&service_dir) {
        return Placement { argv, cwd: inside.to_string_lossy().into_owned(), note: None };
    }
    let mut wrapped = vec![ENV.to_string(), format!("--chdir={}", dir.display()), "--".into()];
    wrapped.extend(argv);
    Placement {
        argv: wrapped,
        cwd: String::new(),
        note: Some(format!(
            "{} is outside the service's directory {} (run_data.cwd must stay inside it): \
             the command enters it with `env --chdir`; move the program there to drop that",
            dir.display(),
            service_dir.display()
        )),
    }
}

/// `a/./b/../c` -> `a/c`, as written (no symlinks are followed: nothing is read).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_commands_are_split_like_a_shell_would() {
        let a = from_command_line(r#"/usr/bin/python3 -m http.server --bind 127.0.0.1 "8 0""#).unwrap();
        assert_eq!(a.argv, ["/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", "8 0"]);
        assert_eq!(a.shell_because, None);
        // Quoted metacharacters are plain text.
        let a = from_command_line(r#"grep -E 'a|b' "x > y" \$HOME"#).unwrap();
        assert_eq!(a.argv, ["grep", "-E", "a|b", "x > y", "$HOME"]);
        assert!(from_command_line("echo 'open").unwrap_err().contains("unbalanced quote"));
        assert!(from_command_line("   ").is_err());
    }

    #[test]
    fn shell_syntax_is_wrapped_and_explained() {
        let a = from_command_line("tail -F /var/log/app.log | grep ERROR >> errors.txt").unwrap();
        assert_eq!(a.argv, ["/bin/sh", "-c", "tail -F /var/log/app.log | grep ERROR >> errors.txt"]);
        assert_eq!(a.shell_because.as_deref(), Some("a pipe (|), a redirection (< >)"));
        let a = from_command_line(r#"worker --home "$HOME" && echo done"#).unwrap();
        assert_eq!(a.shell_because.as_deref(), Some("variable expansion ($), && or a background job (&)"));
        assert!(from_command_line("ls ~/x").unwrap().shell_because.is_some());
        assert!(from_command_line("echo a~b").unwrap().shell_because.is_none());
    }

    #[test]
    fn a_directory_inside_the_service_becomes_cwd_and_outside_uses_env_chdir() {
        let argv = vec!["./run".to_string()];
        let service = Path::new("/srv/apps/web");
        let p = place(argv.clone(), "/srv/apps/web/./bin", Path::new("/"), service);
        assert_eq!((p.cwd.as_str(), p.argv.clone(), p.note), ("bin", argv.clone(), None));
        let p = place(argv.clone(), "/srv/apps/web/", Path::new("/"), service);
        assert_eq!(p.cwd, "");
        let p = place(argv.clone(), "../legacy", Path::new("/opt/conf"), service);
        assert_eq!(p.argv, ["/usr/bin/env", "--chdir=/opt/legacy", "--", "./run"]);
        assert!(p.note.unwrap().contains("/opt/legacy is outside"));
    }
}
