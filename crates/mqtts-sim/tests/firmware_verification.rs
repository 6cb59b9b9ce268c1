//! Every Zephyr Kconfig symbol the firmware configuration uses has a row of evidence in
//! `docs/firmware-verification.md`, and every row there is for a symbol something still uses.
//!
//! "Uses" means: assigned in a `.conf` file (the repository root: `prj.conf`, `overlay-*.conf`;
//! and `boards/*.conf`), named in the app `Kconfig`'s `config` / `select` / `imply` /
//! `depends on` lines, or tested in `CMakeLists.txt`. These must have a row in the section
//! "Kconfig symbols (...)". A row may also name a symbol only `src/`, `build.rs` or
//! `sample.yaml` uses; a row naming a symbol nothing uses fails (a stale row hides that the
//! table was not kept up to date). The application's own `CONFIG_MQTTS_*` options are defined
//! in `Kconfig` itself and need no row.
//!
//! No Zephyr tree is needed: this reads the repository's files only.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Heading (prefix) of the section this test checks. The section "Kconfig symbols tested in
/// Rust code" is a different one and is not read.
const SECTION: &str = "## Kconfig symbols (";

/// Prefix of the application's own options, which need no row.
const APP_PREFIX: &str = "CONFIG_MQTTS_";

/// One row of a markdown table: its cells, trimmed, with `\|` turned back into `|`.
#[derive(Debug)]
struct Row {
    cells: Vec<String>,
    line: usize,
}

/// The body rows (no header, no `|---|` separator) of the tables in the section whose heading
/// starts with `heading`, up to the next `## ` heading. `None` if there is no such section.
fn section_rows(doc: &str, heading: &str) -> Option<Vec<Row>> {
    let mut lines = doc.lines().enumerate();
    lines.by_ref().find(|(_, l)| l.starts_with(heading))?;
    let mut rows = Vec::new();
    let mut header_seen = false;
    for (i, line) in lines {
        if line.starts_with("## ") {
            break;
        }
        let t = line.trim();
        if !t.starts_with('|') {
            header_seen = false;
            continue;
        }
        let cells = split_cells(t);
        if cells
            .iter()
            .all(|c| !c.is_empty() && c.chars().all(|ch| ch == '-' || ch == ':'))
        {
            continue; // separator line
        }
        if !header_seen {
            header_seen = true; // first line of a table is its header
            continue;
        }
        rows.push(Row { cells, line: i + 1 });
    }
    Some(rows)
}

/// Cells of a table line `| a | b \| c |`: split on unescaped `|`.
fn split_cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut cells = Vec::new();
    let mut cur = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cur.push('|');
                chars.next();
            }
            '|' => cells.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    cells.push(cur.trim().to_string());
    cells
}

/// Every `CONFIG_[A-Z0-9_]+` word in `text`.
fn config_words(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("CONFIG_") {
        let start = i + pos;
        let boundary = start == 0 || !is_ident(bytes[start - 1]);
        let mut end = start + "CONFIG_".len();
        while end < bytes.len() && is_symbol_char(bytes[end]) {
            end += 1;
        }
        if boundary && end > start + "CONFIG_".len() {
            out.insert(text[start..end].to_string());
        }
        i = end;
    }
    out
}

fn is_symbol_char(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Symbols assigned in a `.conf` file (`CONFIG_X=...` at the start of a line).
fn conf_assignments(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let (name, _) = l.split_once('=')?;
            let name = name.trim_end();
            let rest = name.strip_prefix("CONFIG_")?;
            (!rest.is_empty() && rest.bytes().all(is_symbol_char)).then(|| name.to_string())
        })
        .collect()
}

/// Symbols a Kconfig file defines or refers to in `config`, `menuconfig`, `select`, `imply`
/// and `depends on` lines, as `CONFIG_` names. Kconfig writes them without the prefix.
fn kconfig_references(text: &str) -> BTreeSet<String> {
    const KEYWORDS: [&str; 5] = ["config", "menuconfig", "select", "imply", "depends on"];
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let l = line.trim_start();
        let Some(rest) = KEYWORDS
            .iter()
            .find_map(|k| l.strip_prefix(k).filter(|r| r.starts_with([' ', '\t'])))
        else {
            continue;
        };
        let rest = rest.split('#').next().unwrap_or("");
        for word in rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            let symbol_like = word.len() > 1
                && word.bytes().all(is_symbol_char)
                && word.as_bytes()[0].is_ascii_uppercase();
            if symbol_like {
                out.insert(format!("CONFIG_{word}"));
            }
        }
    }
    out
}

/// The files of the repository this test reads, as (path, text).
struct Repo {
    confs: Vec<(PathBuf, String)>,
    kconfig: String,
    cmake: String,
    /// src/, build.rs, sample.yaml: may justify a row, need none.
    others: Vec<(PathBuf, String)>,
    doc: String,
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    out
}

fn load_repo() -> Repo {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut confs = Vec::new();
    for p in files_with_ext(&root, "conf")
        .into_iter()
        .chain(files_with_ext(&root.join("boards"), "conf"))
    {
        let text = read(&p);
        confs.push((p, text));
    }
    let mut others = Vec::new();
    for p in files_with_ext(&root.join("src"), "rs")
        .into_iter()
        .chain(files_with_ext(&root.join("src"), "c"))
        .chain(files_with_ext(&root.join("src"), "h"))
        .chain([root.join("build.rs"), root.join("sample.yaml")])
    {
        let text = read(&p);
        others.push((p, text));
    }
    Repo {
        confs,
        kconfig: read(&root.join("Kconfig")),
        cmake: read(&root.join("CMakeLists.txt")),
        others,
        doc: read(&root.join("docs/firmware-verification.md")),
    }
}

/// What is wrong with the Kconfig table of `repo.doc`, one message per problem.
fn check(repo: &Repo) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(rows) = section_rows(&repo.doc, SECTION) else {
        return vec![format!("no section starting with {SECTION:?}")];
    };

    // Symbols that must have a row, with where each is used.
    let mut required: Vec<(String, String)> = Vec::new();
    for (path, text) in &repo.confs {
        for s in conf_assignments(text) {
            required.push((s, path.file_name().unwrap().to_string_lossy().into_owned()));
        }
    }
    for s in kconfig_references(&repo.kconfig) {
        required.push((s, "Kconfig".into()));
    }
    for s in config_words(&repo.cmake) {
        required.push((s, "CMakeLists.txt".into()));
    }
    required.retain(|(s, _)| !s.starts_with(APP_PREFIX));

    let mut documented = BTreeSet::new();
    for row in &rows {
        if row.cells.len() != 5 || row.cells.iter().any(String::is_empty) {
            problems.push(format!(
                "docs/firmware-verification.md:{}: a row needs 5 non-empty cells \
                 (name | where used | file @ commit | line | verdict), found {:?}",
                row.line, row.cells
            ));
        }
        let names = config_words(row.cells.first().map_or("", String::as_str));
        if names.is_empty() {
            problems.push(format!(
                "docs/firmware-verification.md:{}: the name cell names no CONFIG_ symbol",
                row.line
            ));
        }
        documented.extend(names.into_iter().map(|n| (n, row.line)));
    }

    let documented_names: BTreeSet<&str> = documented.iter().map(|(n, _)| n.as_str()).collect();
    let mut reported = BTreeSet::new();
    for (symbol, file) in &required {
        if !documented_names.contains(symbol.as_str()) && reported.insert(symbol.clone()) {
            problems.push(format!(
                "{symbol} (used in {file}) has no row in the Kconfig table of \
                 docs/firmware-verification.md"
            ));
        }
    }

    let mut used: BTreeSet<String> = required.into_iter().map(|(s, _)| s).collect();
    for (_, text) in &repo.others {
        used.extend(config_words(text));
    }
    for (name, line) in &documented {
        if !used.contains(name) {
            problems.push(format!(
                "docs/firmware-verification.md:{line}: row for {name}, which no .conf, Kconfig, \
                 CMakeLists.txt, src/, build.rs or sample.yaml uses (remove the row)"
            ));
        }
    }
    problems
}

#[test]
fn every_zephyr_symbol_has_a_verification_row_and_no_row_is_stale() {
    let repo = load_repo();
    assert!(
        repo.confs.iter().any(|(p, _)| p.ends_with("prj.conf")),
        "prj.conf not found"
    );
    let problems = check(&repo);
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// A repository of the given texts, for the checker's own tests.
fn fake_repo(conf: &str, kconfig: &str, cmake: &str, src: &str, doc: &str) -> Repo {
    Repo {
        confs: vec![(PathBuf::from("prj.conf"), conf.into())],
        kconfig: kconfig.into(),
        cmake: cmake.into(),
        others: vec![(PathBuf::from("src/lib.rs"), src.into())],
        doc: doc.into(),
    }
}

const FAKE_DOC: &str = "\
# Firmware verification

## Kconfig symbols (prj.conf, Kconfig)

| name | where used | file @ commit | line that proves it | verdict |
|---|---|---|---|---|
| `CONFIG_NETWORKING` | prj.conf | a @ 1 | `config NETWORKING` | ok |
| `CONFIG_FPU_SHARING` | prj.conf | b @ 2 | `(FPU_SHARING \\|\\| X)` | ok |
| `CONFIG_DNS_SERVER1` | Kconfig | c @ 3 | `config DNS_SERVER1` | ok |

## Kconfig symbols tested in Rust code

| name | where used | file @ commit | line that proves it | verdict |
|---|---|---|---|---|
| `CONFIG_ONLY_IN_RUST_TABLE` | src | d @ 4 | x | ok |
";

const FAKE_KCONFIG: &str = "\
config MQTTS_NET_STATIC
\tbool \"Static\"
\timply DNS_SERVER_IP_ADDRESSES  # a comment with WORDS
config DNS_SERVER1
\tstring
\tdepends on DNS_SERVER_IP_ADDRESSES
\tdefault MQTTS_STATIC_DNS_SERVER
";

#[test]
fn checker_reports_a_missing_row() {
    let repo = fake_repo(
        "CONFIG_NETWORKING=y\nCONFIG_FPU_SHARING=y\nCONFIG_MQTTS_TLS=y\nCONFIG_NET_TCP=y\n",
        "config DNS_SERVER1\n\tstring\n",
        "",
        "",
        FAKE_DOC,
    );
    let problems = check(&repo);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].starts_with("CONFIG_NET_TCP (used in prj.conf) has no row"));
}

#[test]
fn checker_reports_kconfig_and_cmake_symbols_without_rows() {
    let repo = fake_repo(
        "CONFIG_NETWORKING=y\nCONFIG_FPU_SHARING=y\n",
        FAKE_KCONFIG,
        "if(CONFIG_LED)\n  message(FATAL_ERROR \"x\")\nendif()\nif(CONFIG_MQTTS_TLS)\nendif()\n",
        "",
        FAKE_DOC,
    );
    let problems = check(&repo);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].starts_with("CONFIG_DNS_SERVER_IP_ADDRESSES (used in Kconfig)"));
    assert!(problems[1].starts_with("CONFIG_LED (used in CMakeLists.txt)"));
}

#[test]
fn checker_reports_a_stale_row_and_reads_only_its_own_section() {
    // CONFIG_FPU_SHARING is documented but nothing uses it any more; the Rust table's row is
    // not this test's business.
    let repo = fake_repo(
        "CONFIG_NETWORKING=y\n",
        "config DNS_SERVER1\n\tstring\n",
        "",
        "",
        FAKE_DOC,
    );
    let problems = check(&repo);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].contains("row for CONFIG_FPU_SHARING, which no .conf"),
        "{problems:#?}"
    );
}

#[test]
fn a_row_may_be_justified_by_src_alone() {
    let repo = fake_repo(
        "CONFIG_NETWORKING=y\n",
        "config DNS_SERVER1\n",
        "",
        "#[cfg(CONFIG_FPU_SHARING)] fn f() {}",
        FAKE_DOC,
    );
    assert_eq!(check(&repo), Vec::<String>::new());
}

#[test]
fn parser_details() {
    assert_eq!(
        split_cells("| `a` | b \\| c | d |"),
        vec!["`a`", "b | c", "d"]
    );
    let rows = section_rows(FAKE_DOC, SECTION).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1].cells[3], "`(FPU_SHARING || X)`");
    assert!(section_rows(FAKE_DOC, "## Missing").is_none());

    assert_eq!(
        conf_assignments("# CONFIG_A=y\nCONFIG_B=y\n  CONFIG_C = 3\nCONFIG_=1\nCONFIG_d=1\n"),
        BTreeSet::from(["CONFIG_B".to_string(), "CONFIG_C".to_string()])
    );
    assert_eq!(
        config_words("x CONFIG_A_1) MYCONFIG_B `CONFIG_C`"),
        BTreeSet::from(["CONFIG_A_1".to_string(), "CONFIG_C".to_string()])
    );
    assert_eq!(
        kconfig_references(FAKE_KCONFIG),
        BTreeSet::from([
            "CONFIG_DNS_SERVER1".to_string(),
            "CONFIG_DNS_SERVER_IP_ADDRESSES".to_string(),
            "CONFIG_MQTTS_NET_STATIC".to_string(),
        ])
    );
}

#[test]
fn a_row_with_missing_cells_is_reported() {
    let doc = FAKE_DOC.replace("| b @ 2 |", "|");
    let repo = fake_repo(
        "CONFIG_NETWORKING=y\nCONFIG_FPU_SHARING=y\n",
        "config DNS_SERVER1\n",
        "",
        "",
        &doc,
    );
    let problems = check(&repo);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].contains("a row needs 5 non-empty cells"));
}
