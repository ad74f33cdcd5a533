//! Keeps the code readable where it lives (issue #18): no non-test function
//! over [`MAX_FN_LINES`] lines and no file over [`MAX_FILE_LINES`] lines in
//! `operator/src` and `dashboard/src`, but for the declarative tables named in
//! [`ALLOWED`]. Test code (`#[cfg(test)]` items, and the files of
//! `#[cfg(test)] mod name;`) is not held to the function limit.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

const MAX_FN_LINES: usize = 80;
const MAX_FILE_LINES: usize = 600;

/// (file under the workspace, function) allowed past the limit, and why.
const ALLOWED: &[(&str, &str, &str)] = &[(
    "operator/src/controller/metrics.rs",
    "new",
    "declarative: one registration (name, help, metric) per metric",
)];

/// The source with the insides of comments, strings and character literals
/// blanked (newlines kept), so that braces can be counted.
fn blank(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let keep = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 1;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 1;
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                } else {
                    keep(&mut out, c[i]);
                }
                i += 1;
            }
        } else if c[i] == 'r' && matches!(next, Some('"' | '#')) && !ident(c.get(i.wrapping_sub(1)))
        {
            // A raw string: r"…", r#"…"#, …
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            out.push('"');
            j += 1;
            while j < c.len() {
                if c[j] == '"' && (1..=hashes).all(|k| c.get(j + k) == Some(&'#')) {
                    j += hashes;
                    break;
                }
                keep(&mut out, c[j]);
                j += 1;
            }
            out.push('"');
            i = j + 1;
        } else if c[i] == '"' {
            out.push('"');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    keep(&mut out, c[i]);
                    i += 1;
                }
                if i < c.len() {
                    keep(&mut out, c[i]);
                }
                i += 1;
            }
            out.push('"');
            i += 1;
        } else if c[i] == '\'' && (c.get(i + 2) == Some(&'\'') || next == Some('\\')) {
            // A character literal ('{', '\n', '\u{7b}'), not a lifetime.
            let mut j = i + 1;
            if c[j] == '\\' {
                j += 1;
            }
            j += 1;
            while j < c.len() && c[j] != '\'' {
                j += 1;
            }
            out.push_str("' '");
            i = j + 1;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn ident(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// The line on which the item starting at line `at` ends (its closing brace,
/// or its `;` when it has no body).
fn item_end(lines: &[&str], at: usize) -> usize {
    let mut depth = 0i64;
    let mut opened = false;
    for (i, line) in lines.iter().enumerate().skip(at) {
        for ch in line.chars() {
            match ch {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth -= 1,
                ';' if !opened && depth == 0 => return i,
                _ => {}
            }
        }
        if opened && depth <= 0 {
            return i;
        }
    }
    lines.len().saturating_sub(1)
}

/// The name of the function declared on `line`, if one is.
fn fn_name(line: &str) -> Option<&str> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "fn")?;
    let before_ok = words[..at].iter().all(|w| {
        w.starts_with("pub")
            || matches!(*w, "async" | "const" | "unsafe" | "extern" | "default")
            || w.starts_with('"')
    });
    let name = words.get(at + 1)?;
    let end = name
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(name.len());
    (before_ok && end > 0).then(|| &name[..end])
}

/// The functions over the limit in one file, as (name, lines), and the
/// modules it declares as `#[cfg(test)] mod name;`.
fn scan_file(src: &str) -> (Vec<(String, usize)>, Vec<String>) {
    let blanked = blank(src);
    let lines: Vec<&str> = blanked.lines().collect();
    let (mut long, mut test_mods) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim();
        if t.starts_with("#[cfg(test)]") {
            let mut j = i + 1;
            while j < lines.len() && lines[j].trim().starts_with("#[") {
                j += 1;
            }
            let end = item_end(&lines, j);
            if let Some(name) = lines
                .get(j)
                .and_then(|l| l.trim().strip_prefix("mod "))
                .and_then(|rest| rest.strip_suffix(';'))
            {
                test_mods.push(name.trim().to_string());
            }
            i = end + 1;
            continue;
        }
        if let Some(name) = fn_name(t) {
            let end = item_end(&lines, i);
            let n = end - i + 1;
            if n > MAX_FN_LINES {
                long.push((name.to_string(), n));
            }
        }
        i += 1;
    }
    (long, test_mods)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Where `#[cfg(test)] mod name;` in `file` lives.
fn module_files(file: &Path, name: &str) -> [PathBuf; 2] {
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let dir = file.parent().unwrap_or(Path::new(""));
    let base = if matches!(stem, "mod" | "lib" | "main") {
        dir.to_path_buf()
    } else {
        dir.join(stem)
    };
    [
        base.join(format!("{name}.rs")),
        base.join(name).join("mod.rs"),
    ]
}

/// Every breach of the limits under `workspace`, one line each.
fn breaches(workspace: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for dir in ["operator/src", "dashboard/src"] {
        rust_files(&workspace.join(dir), &mut files);
    }
    files.sort();
    let mut scanned = Vec::new();
    let mut test_files = HashSet::new();
    for file in &files {
        let src = std::fs::read_to_string(file).unwrap_or_default();
        let (long, test_mods) = scan_file(&src);
        for m in test_mods {
            test_files.extend(module_files(file, &m));
        }
        scanned.push((file.clone(), src.lines().count(), long));
    }
    let mut out = Vec::new();
    for (file, n, long) in scanned {
        let rel = file.strip_prefix(workspace).unwrap_or(&file);
        let rel = rel.to_string_lossy().replace('\\', "/");
        if n > MAX_FILE_LINES {
            out.push(format!("{rel}: {n} lines (at most {MAX_FILE_LINES})"));
        }
        if test_files.contains(&file) {
            continue;
        }
        for (name, lines) in long {
            if !ALLOWED.iter().any(|(f, n, _)| *f == rel && *n == name) {
                out.push(format!(
                    "{rel}: fn {name} has {lines} lines (at most {MAX_FN_LINES})"
                ));
            }
        }
    }
    out
}

#[test]
fn functions_and_files_fit_a_screen() {
    // GOVERNOR_LAYOUT_ROOT checks another checkout (e.g. an older tree).
    let workspace = std::env::var_os("GOVERNOR_LAYOUT_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    assert!(
        workspace.join("operator/src/lib.rs").is_file(),
        "{} is not the workspace",
        workspace.display()
    );
    let found = breaches(&workspace);
    assert!(
        found.is_empty(),
        "split these by responsibility (or, for a declarative table, add it to ALLOWED with why):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scanner_sees_long_functions_and_skips_tests_and_literals() {
    let body = "    let x = 1;\n".repeat(MAX_FN_LINES);
    let src = format!(
        "fn long() {{\n{body}}}\n\
         pub(crate) async fn short() {{ let s = \"}}}}\"; let c = '}}'; let r = r#\"{{\"#; }}\n\
         #[cfg(test)]\nmod tests {{\n    fn in_test() {{\n{body}    }}\n}}\n\
         #[cfg(test)]\nmod more;\n"
    );
    let (long, test_mods) = scan_file(&src);
    assert_eq!(long, [("long".to_string(), MAX_FN_LINES + 2)]);
    assert_eq!(test_mods, ["more"]);
    let fits = format!(
        "fn fits() {{\n{}}}\n",
        "    x();\n".repeat(MAX_FN_LINES - 2)
    );
    assert!(scan_file(&fits).0.is_empty());
}
