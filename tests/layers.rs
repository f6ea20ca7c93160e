//! The house rules of `src/`, checked on the source itself: no module imports one that stands
//! later in the data flow (capture → wire → decode → flow → inspect → classify → counters →
//! report → sensor → pipeline → app), no two files import each other round a cycle, and no file holds
//! more than 800 lines of non-test code. The README's "How it works" draws the same order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module's place in the data flow. `signature` (the rules), `cli` (the
/// arguments), `limits` (bounded file reads) and `wire::reader` (the one byte reader) are leaves
/// anything may use.
fn rank(module_path: &[&str]) -> Option<u32> {
    Some(match module_path {
        ["wire", "reader", ..] | ["signature", ..] | ["cli", ..] | ["limits", ..] => 0,
        ["capture", ..] => 1,
        ["wire", ..] => 2,
        ["decode", ..] => 3,
        ["flow", ..] => 4,
        ["inspect", ..] => 5,
        ["classify", ..] => 6,
        ["counters", ..] => 7,
        ["report", ..] => 8,
        ["sensor", ..] => 9,
        ["pipeline", ..] => 10,
        ["app", ..] => 11,
        _ => return None,
    })
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/` with its module path (`src/inspect/dns.rs` → inspect::dns).
fn files() -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut all = Vec::new();
    walk(&src(), &mut all);
    all.into_iter()
        .map(|p| {
            let rel = p.strip_prefix(src()).unwrap().with_extension("");
            let mut m: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into()).collect();
            if m.last()
                .is_some_and(|l| l == "mod" || l == "lib" || l == "main")
            {
                m.pop();
            }
            (m, p)
        })
        .collect()
}

/// The code of a file without its `#[cfg(test)]` module, comments and string contents.
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<i32> = None;
    let mut depth = 0i32;
    let mut pending_test = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("//") {
            continue;
        }
        if t.starts_with("#[cfg(test)]") {
            pending_test = true;
            continue;
        }
        let opens = t.matches('{').count() as i32;
        let closes = t.matches('}').count() as i32;
        if pending_test {
            pending_test = false;
            if t.ends_with(';') {
                continue; // `mod tests;` in a file of its own
            }
            skip_depth = Some(depth);
        }
        depth += opens - closes;
        if let Some(d) = skip_depth {
            if depth <= d {
                skip_depth = None;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The modules a file's code names: `crate::a::b` paths, and `super::` paths resolved.
fn imports(module: &[String], code: &str, known: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    for (start, _) in code
        .match_indices("crate::")
        .chain(code.match_indices("super::"))
    {
        let before = code[..start].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[start..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let path: Vec<&str> = rest[..end].split("::").filter(|s| !s.is_empty()).collect();
        let mut abs: Vec<String> = Vec::new();
        let mut it = path.iter().peekable();
        if path.first() == Some(&"crate") {
            it.next();
        } else {
            abs = module.to_vec();
            // In `a/b.rs` (module a::b), `super` is a; in `a/mod.rs` (module a) it is the crate.
            while it.peek() == Some(&&"super") {
                it.next();
                abs.pop();
            }
        }
        abs.extend(it.map(|s| s.to_string()));
        // The longest prefix that is a file of ours.
        while !abs.is_empty() && !known.contains(&abs) {
            abs.pop();
        }
        if !abs.is_empty() && abs != module {
            found.insert(abs);
        }
    }
    found
}

#[test]
fn no_module_imports_one_later_in_the_data_flow() {
    let files = files();
    let known: BTreeSet<Vec<String>> = files.keys().cloned().collect();
    let mut wrong = Vec::new();
    for (module, path) in &files {
        let m: Vec<&str> = module.iter().map(String::as_str).collect();
        let Some(mine) = rank(&m) else { continue };
        let code = code_of(&std::fs::read_to_string(path).unwrap());
        for target in imports(module, &code, &known) {
            let t: Vec<&str> = target.iter().map(String::as_str).collect();
            if let Some(theirs) = rank(&t)
                && theirs > mine
            {
                wrong.push(format!(
                    "{} imports {}",
                    module.join("::"),
                    target.join("::")
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the data flow:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_import_cycle_between_files() {
    let files = files();
    let known: BTreeSet<Vec<String>> = files.keys().cloned().collect();
    let graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = files
        .iter()
        .map(|(m, p)| {
            let code = code_of(&std::fs::read_to_string(p).unwrap());
            // A parent module naming its own children (`pub use child::X`) is how Rust
            // re-exports, not a dependency back up.
            let deps = imports(m, &code, &known)
                .into_iter()
                .filter(|t| !(t.len() > m.len() && t.starts_with(m)))
                .collect();
            (m.clone(), deps)
        })
        .collect();
    // Depth-first search for a back edge.
    fn visit(
        n: &Vec<String>,
        g: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for d in g.get(n).into_iter().flatten() {
            match state.get(d) {
                Some(1) => {
                    let at = stack.iter().position(|s| s == d).unwrap();
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(d.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(d, g, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if !state.contains_key(n) {
            let mut stack = Vec::new();
            if let Some(c) = visit(n, &graph, &mut state, &mut stack) {
                let names: Vec<String> = c.iter().map(|m| m.join("::")).collect();
                panic!("import cycle: {}", names.join(" -> "));
            }
        }
    }
}

#[test]
fn no_file_holds_more_than_800_lines_of_code_outside_its_tests() {
    let mut long = Vec::new();
    for (module, path) in files() {
        let code = code_of(&std::fs::read_to_string(&path).unwrap());
        let lines = code.lines().filter(|l| !l.trim().is_empty()).count();
        if lines > 800 {
            long.push(format!("{} ({lines} lines)", module.join("::")));
        }
    }
    assert!(
        long.is_empty(),
        "files past 800 lines of non-test code:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_checks_see_what_they_check() {
    // The source walker finds the modules, and the import reader resolves both forms.
    let files = files();
    let known: BTreeSet<Vec<String>> = files.keys().cloned().collect();
    assert!(known.contains(&vec!["pipeline".to_string(), "dispatch".to_string()]));
    let m = vec!["pipeline".to_string(), "worker".to_string()];
    let found = imports(
        &m,
        "use super::dispatch::Routed;\nuse crate::flow::table::FlowTable;",
        &known,
    );
    assert!(found.contains(&vec!["pipeline".to_string(), "dispatch".to_string()]));
    assert!(found.contains(&vec!["flow".to_string(), "table".to_string()]));
    let test_only = code_of("fn a() {}\n#[cfg(test)]\nmod tests {\n    use crate::app::run;\n}\n");
    assert!(!test_only.contains("crate::app"));
}
