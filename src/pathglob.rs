//! Config path patterns: `-c 'services/*/cortado.yml'` is expanded by cortado (quoted, so the
//! shell leaves it alone, and the same on every platform and in Actions).
//!
//! Receives a pattern; hands on the files it matches, sorted. `*` matches any run of
//! characters within one path component, `?` one character, `**` any number of folders
//! (none included). Names starting with `.` match only a pattern component that starts with
//! `.`. A path without `*` or `?` is returned as it is (its existence is checked later, with
//! the other read errors). Symbolic links to folders are not followed by `**`.

use std::path::{Component, Path, PathBuf};

/// Whether `text` has wildcards.
pub(crate) fn is_pattern(text: &str) -> bool {
    text.contains('*') || text.contains('?')
}

/// `path` made absolute with `.` and `..` resolved, symbolic links resolved in the longest
/// part that exists (a deleted file has no canonical form of its own).
pub(crate) fn absolute(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    match (out.parent(), out.file_name()) {
        (Some(parent), Some(name)) if parent != out => match std::fs::canonicalize(parent) {
            Ok(p) => p.join(name),
            Err(_) => absolute_parent(parent).join(name),
        },
        _ => out,
    }
}

/// The nearest existing ancestor of `p` canonicalized, with the rest joined back on.
fn absolute_parent(p: &Path) -> PathBuf {
    match std::fs::canonicalize(p) {
        Ok(c) => c,
        Err(_) => match (p.parent(), p.file_name()) {
            (Some(parent), Some(name)) if parent != p => absolute_parent(parent).join(name),
            _ => p.to_path_buf(),
        },
    }
}

/// The files `pattern` matches, sorted; a path without wildcards as it is.
pub(crate) fn expand(pattern: &str) -> std::io::Result<Vec<PathBuf>> {
    if !is_pattern(pattern) {
        return Ok(vec![PathBuf::from(pattern)]);
    }
    let (root, rest) = match pattern.strip_prefix('/') {
        Some(r) => (PathBuf::from("/"), r),
        None => (PathBuf::new(), pattern),
    };
    let parts: Vec<&str> = rest
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let mut found = Vec::new();
    walk(&root, &parts, &mut found)?;
    found.sort();
    found.dedup();
    Ok(found)
}

fn dir_of(p: &Path) -> &Path {
    if p.as_os_str().is_empty() {
        Path::new(".")
    } else {
        p
    }
}

fn walk(base: &Path, parts: &[&str], found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let Some((first, rest)) = parts.split_first() else {
        if base.is_file() {
            found.push(base.to_path_buf());
        }
        return Ok(());
    };
    if *first == "**" {
        // Zero folders, then each folder below (not through symlinks).
        walk(base, rest, found)?;
        for entry in read_dir_sorted(base)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir {
                walk(&base.join(&name), parts, found)?;
            }
        }
        return Ok(());
    }
    if !is_pattern(first) {
        let next = base.join(first);
        if rest.is_empty() || next.is_dir() {
            return walk(&next, rest, found);
        }
        return Ok(());
    }
    for entry in read_dir_sorted(base)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && !first.starts_with('.') {
            continue;
        }
        if matches(first.as_bytes(), name.as_bytes()) {
            walk(&base.join(&name), rest, found)?;
        }
    }
    Ok(())
}

/// The entries of a folder; none when it is not one (a pattern simply matches nothing there).
fn read_dir_sorted(dir: &Path) -> std::io::Result<Vec<std::fs::DirEntry>> {
    match std::fs::read_dir(dir_of(dir)) {
        Ok(rd) => {
            let mut v: Vec<_> = rd.filter_map(|e| e.ok()).collect();
            v.sort_by_key(|e| e.file_name());
            Ok(v)
        }
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.kind() == std::io::ErrorKind::NotADirectory =>
        {
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

/// Whether `path` matches `pattern`, both `/`-separated: `*` and `?` within one component,
/// `**` any number of components (none included). Unlike [`expand`], names starting with `.`
/// match too: a release step's `paths:` names a service's sources, dotfiles included.
pub(crate) fn matches_path(pattern: &str, path: &str) -> bool {
    fn parts(s: &str) -> Vec<&str> {
        s.split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect()
    }
    fn go(p: &[&str], n: &[&str]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((&"**", rest)) => (0..=n.len()).any(|k| go(rest, &n[k..])),
            Some((first, rest)) => match n.split_first() {
                Some((name, more)) => matches(first.as_bytes(), name.as_bytes()) && go(rest, more),
                None => false,
            },
        }
    }
    go(&parts(pattern), &parts(path))
}

/// `*` and `?` within one component (iterative, with one backtrack point per `*`).
fn matches(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((sp, sn)) = star {
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_matching() {
        assert!(matches_path("/r/src/api/**", "/r/src/api/main.go"));
        assert!(matches_path("/r/src/api/**", "/r/src/api/a/b/.env"));
        assert!(matches_path("src/**/*.go", "src/x.go"));
        assert!(!matches_path("/r/src/api/**", "/r/src/apis/main.go"));
        assert!(!matches_path("/r/src/*.go", "/r/src/a/x.go"));
        assert!(matches_path("/r/src/*/x.go", "/r/src/a/x.go"));
    }

    #[test]
    fn component_matching() {
        assert!(matches(b"*", b"cortado.yml"));
        assert!(matches(b"*.yml", b"cortado.yml"));
        assert!(!matches(b"*.yml", b"cortado.yaml"));
        assert!(matches(b"cortado.y?ml", b"cortado.yaml"));
        assert!(matches(b"a*b*c", b"axxbyyc"));
        assert!(!matches(b"a*b*c", b"axxbyy"));
        assert!(matches(b"**", b""));
    }

    #[test]
    fn expands_sorted_and_only_files() {
        let root = std::env::temp_dir().join(format!("cortado-glob-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in [
            "services/web",
            "services/api",
            "services/.hidden",
            "services/jobs/nightly",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in [
            "services/web/cortado.yml",
            "services/api/cortado.yml",
            "services/.hidden/cortado.yml",
            "services/jobs/nightly/cortado.yml",
            "services/api/notes.txt",
        ] {
            std::fs::write(root.join(f), "").unwrap();
        }
        let base = root.to_string_lossy();
        let rel = |v: Vec<PathBuf>| -> Vec<String> {
            v.iter()
                .map(|p| {
                    p.strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect()
        };
        assert_eq!(
            rel(expand(&format!("{base}/services/*/cortado.yml")).unwrap()),
            ["services/api/cortado.yml", "services/web/cortado.yml"]
        );
        assert_eq!(
            rel(expand(&format!("{base}/services/**/cortado.yml")).unwrap()),
            [
                "services/api/cortado.yml",
                "services/jobs/nightly/cortado.yml",
                "services/web/cortado.yml"
            ]
        );
        assert!(
            expand(&format!("{base}/nowhere/*/cortado.yml"))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            expand("plain/path.yml").unwrap(),
            [PathBuf::from("plain/path.yml")]
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
