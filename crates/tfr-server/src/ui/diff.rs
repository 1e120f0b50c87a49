//! Unified diffs, split into files, hunks and numbered lines for display.

/// What a line of a diff is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    Context,
    Added,
    Removed,
    /// `\ No newline at end of file` and the like.
    Note,
}

impl LineKind {
    /// The CSS class of the line.
    pub fn class(self) -> &'static str {
        match self {
            LineKind::Context => "ctx",
            LineKind::Added => "add",
            LineKind::Removed => "del",
            LineKind::Note => "note",
        }
    }

    /// The marker shown before the text.
    pub fn marker(self) -> &'static str {
        match self {
            LineKind::Context | LineKind::Note => " ",
            LineKind::Added => "+",
            LineKind::Removed => "-",
        }
    }
}

/// One line, with its numbers in the old and new file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffLine {
    pub kind: LineKind,
    pub old: Option<u32>,
    pub new: Option<u32>,
    pub text: String,
}

/// A `@@ ... @@` section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hunk {
    pub header: String,
    pub lines: Vec<DiffLine>,
}

/// The changes to one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiffFile {
    pub path: String,
    pub hunks: Vec<Hunk>,
    pub added: usize,
    pub removed: usize,
}

impl DiffFile {
    pub fn line_count(&self) -> usize {
        self.hunks.iter().map(|h| h.lines.len()).sum()
    }
}

/// Splits a unified diff into files. Text that is not a diff (a SQL script, a config file)
/// comes back as one "file" of numbered context lines, so it is still shown readably.
pub fn parse(diff: &str) -> Vec<DiffFile> {
    let mut files: Vec<DiffFile> = Vec::new();
    let mut current: Option<DiffFile> = None;
    let (mut old, mut new) = (0u32, 0u32);
    let mut seen_hunk = false;
    for line in diff.lines() {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            files.extend(current.take());
            let path = rest.rsplit(" b/").next().unwrap_or(rest).to_owned();
            current = Some(DiffFile {
                path,
                ..DiffFile::default()
            });
            continue;
        }
        if line.starts_with("--- ") && current.as_ref().is_none_or(|f| !f.hunks.is_empty()) {
            // A new file without a `diff --git` line (plain `diff -u`).
            files.extend(current.take());
            current = Some(DiffFile::default());
            continue;
        }
        if let Some(path) = line.strip_prefix("+++ ") {
            let file = current.get_or_insert_with(DiffFile::default);
            if file.hunks.is_empty() {
                let path = path.split('\t').next().unwrap_or(path);
                let path = path.strip_prefix("b/").unwrap_or(path);
                if path != "/dev/null" || file.path.is_empty() {
                    file.path = path.to_owned();
                }
                continue;
            }
        }
        if line.starts_with("--- ") && current.as_ref().is_some_and(|f| f.hunks.is_empty()) {
            continue;
        }
        if let Some(header) = line.strip_prefix("@@")
            && let Some((o, n)) = hunk_starts(header)
        {
            old = o;
            new = n;
            seen_hunk = true;
            let file = current.get_or_insert_with(DiffFile::default);
            file.hunks.push(Hunk {
                header: line.to_owned(),
                lines: Vec::new(),
            });
            continue;
        }
        let Some(file) = current.as_mut().filter(|f| !f.hunks.is_empty()) else {
            // Lines before any hunk: git's "index", "new file mode" lines, or plain text.
            if !seen_hunk && !is_git_header(line) {
                let file = current.get_or_insert_with(DiffFile::default);
                if file.hunks.is_empty() {
                    file.hunks.push(Hunk::default());
                    old = 1;
                    new = 1;
                }
                push(file, LineKind::Context, line, &mut old, &mut new);
            }
            continue;
        };
        let (kind, text) = match line.chars().next() {
            Some('+') => (LineKind::Added, &line[1..]),
            Some('-') => (LineKind::Removed, &line[1..]),
            Some(' ') => (LineKind::Context, &line[1..]),
            Some('\\') => (LineKind::Note, line),
            _ => (LineKind::Context, line),
        };
        push(file, kind, text, &mut old, &mut new);
    }
    files.extend(current);
    for file in &mut files {
        if file.path.is_empty() {
            file.path = if seen_hunk {
                "diff".into()
            } else {
                "text".into()
            };
        }
    }
    files
}

fn push(file: &mut DiffFile, kind: LineKind, text: &str, old: &mut u32, new: &mut u32) {
    let (old_number, new_number) = match kind {
        LineKind::Context => (Some(*old), Some(*new)),
        LineKind::Added => (None, Some(*new)),
        LineKind::Removed => (Some(*old), None),
        LineKind::Note => (None, None),
    };
    match kind {
        LineKind::Context => {
            *old += 1;
            *new += 1;
        }
        LineKind::Added => {
            *new += 1;
            file.added += 1;
        }
        LineKind::Removed => {
            *old += 1;
            file.removed += 1;
        }
        LineKind::Note => {}
    }
    if let Some(hunk) = file.hunks.last_mut() {
        hunk.lines.push(DiffLine {
            kind,
            old: old_number,
            new: new_number,
            text: text.to_owned(),
        });
    }
}

fn is_git_header(line: &str) -> bool {
    [
        "index ",
        "new file mode",
        "deleted file mode",
        "similarity index",
        "rename from",
        "rename to",
        "old mode",
        "new mode",
        "Binary files",
    ]
    .iter()
    .any(|prefix| line.starts_with(prefix))
}

/// The first old and new line numbers of a hunk header ` -12,5 +12,7 @@ ...`.
fn hunk_starts(header: &str) -> Option<(u32, u32)> {
    let mut parts = header.split_whitespace();
    let old = parts.next()?.strip_prefix('-')?;
    let new = parts.next()?.strip_prefix('+')?;
    let start = |range: &str| range.split(',').next()?.parse::<u32>().ok();
    Some((start(old)?, start(new)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIT_DIFF: &str = "diff --git a/config/limits.yml b/config/limits.yml
index 1234..5678 100644
--- a/config/limits.yml
+++ b/config/limits.yml
@@ -10,3 +10,3 @@ api:
   burst: 50
-  rate: 1000
+  rate: 2000
   timeout: 30s
diff --git a/README b/README
new file mode 100644
--- /dev/null
+++ b/README
@@ -0,0 +1,2 @@
+hello
+world
\\ No newline at end of file
";

    #[test]
    fn git_diffs_split_into_numbered_files() {
        let files = parse(GIT_DIFF);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].path, "config/limits.yml");
        assert_eq!((files[0].added, files[0].removed), (1, 1));
        let lines = &files[0].hunks[0].lines;
        assert_eq!(
            lines[0],
            DiffLine {
                kind: LineKind::Context,
                old: Some(10),
                new: Some(10),
                text: "  burst: 50".into()
            }
        );
        assert_eq!(
            lines[1],
            DiffLine {
                kind: LineKind::Removed,
                old: Some(11),
                new: None,
                text: "  rate: 1000".into()
            }
        );
        assert_eq!(
            lines[2],
            DiffLine {
                kind: LineKind::Added,
                old: None,
                new: Some(11),
                text: "  rate: 2000".into()
            }
        );
        assert_eq!(lines[3].old, Some(12));
        assert_eq!(files[1].path, "README");
        assert_eq!(files[1].added, 2);
        assert_eq!(files[1].hunks[0].lines[2].kind, LineKind::Note);
    }

    #[test]
    fn plain_unified_diffs() {
        let files =
            parse("--- old.sql\t2026-11-01\n+++ new.sql\t2026-11-02\n@@ -1 +1 @@\n-a\n+b\n");
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, "new.sql");
        assert_eq!((files[0].added, files[0].removed), (1, 1));
    }

    #[test]
    fn text_that_is_not_a_diff_is_shown_numbered() {
        let files = parse("CREATE INDEX owner ON videos (owner_id);\nANALYZE videos;\n");
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, "text");
        let lines = &files[0].hunks[0].lines;
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[1].new, lines[1].kind), (Some(2), LineKind::Context));
    }

    #[test]
    fn odd_input_does_not_panic() {
        for text in [
            "",
            "@@",
            "@@ -x +y @@",
            "diff --git",
            "+++ ",
            "--- \n+++ \n@@ -1 +1 @@\n",
            "\\",
        ] {
            let _ = parse(text);
        }
    }
}
