//! Keeps the floors of the architecture (docs/architecture.md) honest: reads the `use` lines and
//! the `crate::…`/`super::…` paths of every production file under `src/` and checks that an
//! import only points down the floors, that no two folders import each other (also not through a
//! third), and that few files import each other in a circle. Test modules (`#[cfg(test)]`,
//! `*_tests.rs`) are left out: a test may use a simulator from above.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The floors from the ground up: a module may import its own floor's and lower floors' modules.
/// Modules of one floor may import each other as long as no folder cycle forms.
const FLOORS: &[&[&str]] = &[
    &["sync", "clock"],
    &["upstream", "listener"],
    &["api"],
    &["metrics"],
    &["personio", "reteach"],
    &["webhook"],
    &["jobs"],
    &["credentials"],
    &["preflight"],
    &["controller"],
    &["crdgen", "sim", "demo", "bench"],
];

/// How many groups of files that import each other in a circle the tree may have (the goal of
/// issue 28: at most four). Four remain: the Personio client (client, auth, upload, webhooks),
/// both simulators and the benchmark (its child process dispatches to every scenario); the field
/// mapping core left the list with the field table. Lower it as they go; never raise it.
const MAX_FILE_CIRCLES: usize = 4;

fn floor_of(module: &str) -> Option<usize> {
    FLOORS.iter().position(|floor| floor.contains(&module))
}

/// One production source file: its module path (`["controller", "employee"]`) and its code with
/// comments, strings and test modules taken out.
struct Source {
    module: Vec<String>,
    code: String,
}

fn src_dir() -> PathBuf {
    Path::new(option_env!("CARGO_MANIFEST_DIR").unwrap_or(".")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

fn module_of(path: &Path) -> Vec<String> {
    let relative = path.strip_prefix(src_dir()).expect("a file under src/");
    let mut module: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
        module.pop();
    }
    module
}

/// The code without comments, string and char literals (their text could look like a path).
fn strip_comments_and_strings(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            i += end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |end| end + 2);
            i += end;
        } else if rest.starts_with("r#\"") || rest.starts_with("r\"") {
            let hashes = rest[1..].chars().take_while(|c| *c == '#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 2 + hashes;
            let end = rest[body..]
                .find(&close)
                .map_or(rest.len(), |end| body + end + close.len());
            out.push_str("\"\"");
            i += end;
        } else if bytes[i] == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i = j + 1;
        } else if bytes[i] == b'\'' && is_char_literal(rest) {
            let end = rest[1..].find('\'').map_or(rest.len(), |end| end + 2);
            out.push_str("' '");
            i += end;
        } else {
            let c = rest.chars().next().expect("a char");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `'a'`, `'\n'`, `'\''` are literals; `'a` (a lifetime) is not.
fn is_char_literal(rest: &str) -> bool {
    let mut chars = rest.chars().skip(1);
    match chars.next() {
        Some('\\') => true,
        Some(_) => chars.next() == Some('\''),
        None => false,
    }
}

/// The code without the items under `#[cfg(test)]`, and the names of the child modules declared
/// under it (`#[cfg(test)] mod fakes;`).
fn strip_test_items(code: &str) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut test_modules = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        rest = &rest[at + "#[cfg(test)]".len()..];
        // Skip further attributes, then the item: up to `;` or its balanced `{…}`.
        let item_end = item_end(rest);
        let item = &rest[..item_end];
        if let Some(name) = declared_module(item) {
            if item.trim_end().ends_with(';') {
                test_modules.push(name);
            }
        }
        rest = &rest[item_end..];
    }
    out.push_str(rest);
    (out, test_modules)
}

fn item_end(rest: &str) -> usize {
    let mut depth = 0usize;
    let mut brackets = 0usize;
    for (i, c) in rest.char_indices() {
        match c {
            '[' => brackets += 1,
            ']' => brackets = brackets.saturating_sub(1),
            '{' if brackets == 0 => depth += 1,
            '}' if brackets == 0 => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            ';' if depth == 0 && brackets == 0 => return i + 1,
            _ => {}
        }
    }
    rest.len()
}

fn declared_module(item: &str) -> Option<String> {
    let words: Vec<&str> = item
        .split(|c: char| c.is_whitespace() || c == ';' || c == '{')
        .filter(|w| !w.is_empty())
        .collect();
    let at = words.iter().position(|w| *w == "mod")?;
    words.get(at + 1).map(|name| name.to_string())
}

/// All production files, by module path.
fn sources() -> Vec<Source> {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let mut parsed = Vec::new();
    let mut test_only: BTreeSet<Vec<String>> = BTreeSet::new();
    for path in files {
        let name = path.file_name().expect("a file name").to_string_lossy();
        if name.ends_with("_tests.rs") || name == "main.rs" {
            continue;
        }
        let text = fs::read_to_string(&path).expect("a readable source file");
        let (code, tests) = strip_test_items(&strip_comments_and_strings(&text));
        let module = module_of(&path);
        for child in tests {
            let mut child_module = module.clone();
            child_module.push(child);
            test_only.insert(child_module);
        }
        parsed.push(Source { module, code });
    }
    parsed.retain(|source| !test_only.contains(&source.module));
    parsed
}

/// Expands one `use` tree (`crate::{a::B, c::{D, E}}`) into its paths.
fn expand_use_tree(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head = format!("{prefix}{}", &tree[..open]);
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand_use_tree(&inner[start..i], &head, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand_use_tree(&inner[start..], &head, out);
    } else if !tree.is_empty() {
        let path = tree.split(" as ").next().unwrap_or(tree).trim();
        out.push(format!("{prefix}{path}"));
    }
}

/// The paths a file names: its `use` items (expanded; `pub use` re-exports apart) and the
/// `crate::…`/`super::…` paths in its code.
struct Named {
    uses: Vec<String>,
    reexports: Vec<String>,
    inline: Vec<String>,
}

fn named_paths(code: &str) -> Named {
    let mut named = Named {
        uses: Vec::new(),
        reexports: Vec::new(),
        inline: Vec::new(),
    };
    let mut rest_code = String::new();
    let mut rest = code;
    while let Some(at) = find_use(rest) {
        rest_code.push_str(&rest[..at.start]);
        let end = rest[at.body..]
            .find(';')
            .map_or(rest.len(), |end| at.body + end);
        let mut paths = Vec::new();
        expand_use_tree(&rest[at.body..end], "", &mut paths);
        if at.public {
            named.reexports.extend(paths);
        } else {
            named.uses.extend(paths);
        }
        rest = &rest[(end + 1).min(rest.len())..];
    }
    rest_code.push_str(rest);
    let code = rest_code;
    for root in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(root) {
            let start = from + at;
            let before = code[..start].chars().next_back();
            from = start + root.len();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let end = code[start..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |end| start + end);
            named
                .inline
                .push(code[start..end].trim_end_matches(':').to_string());
        }
    }
    named
}

struct UseAt {
    start: usize,
    body: usize,
    public: bool,
}

/// The next `use` item: `use …;` or `pub use …;` (also `pub(crate) use`).
fn find_use(code: &str) -> Option<UseAt> {
    let mut from = 0;
    while let Some(at) = code[from..].find("use ") {
        let start = from + at;
        from = start + 4;
        let before = code[..start].trim_end();
        let at_item_start = before.is_empty()
            || before.ends_with([';', '{', '}', ']'])
            || before.ends_with("pub")
            || before.ends_with(')');
        if !at_item_start || code[..start].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let public = before.ends_with("pub") || before.ends_with("pub(crate)");
        return Some(UseAt {
            start,
            body: start + 4,
            public,
        });
    }
    None
}

/// The crate's module tree: which module paths are files.
struct Tree {
    files: BTreeSet<Vec<String>>,
    /// Names a file hands on (`pub use x::Y;`), to the absolute path they stand for.
    reexports: BTreeMap<Vec<String>, BTreeMap<String, Vec<String>>>,
}

/// `path` as an absolute module path, read in `module` (a file's module).
fn absolute(path: &str, module: &[String], tree: &Tree) -> Option<Vec<String>> {
    let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<String> = match segments.first().copied() {
        Some("crate") => {
            segments.remove(0);
            Vec::new()
        }
        Some("super") | Some("self") => module.to_vec(),
        Some(first) => {
            // `use child::X;` inside a module that declares `child`.
            let mut child = module.to_vec();
            child.push(first.to_string());
            if tree.files.contains(&child) {
                module.to_vec()
            } else {
                return None;
            }
        }
        None => return None,
    };
    while let Some(first) = segments.first().copied() {
        match first {
            "super" => {
                base.pop()?;
            }
            "self" => {}
            _ => break,
        }
        segments.remove(0);
    }
    base.extend(segments.iter().map(|s| s.to_string()));
    Some(base)
}

/// The file that defines what `path` names, following re-exports.
fn file_of(path: &[String], tree: &Tree, depth: usize) -> Option<Vec<String>> {
    let longest = (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| tree.files.contains(prefix))?;
    if depth < 8 {
        if let Some(name) = path.get(longest.len()) {
            if let Some(target) = tree.reexports.get(&longest).and_then(|m| m.get(name)) {
                let mut target = target.clone();
                target.extend(path[longest.len() + 1..].iter().cloned());
                if let Some(file) = file_of(&target, tree, depth + 1) {
                    return Some(file);
                }
            }
        }
    }
    Some(longest)
}

/// The import graph between production files (module paths).
fn file_graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let sources = sources();
    let mut tree = Tree {
        files: sources.iter().map(|s| s.module.clone()).collect(),
        reexports: BTreeMap::new(),
    };
    let named: Vec<Named> = sources.iter().map(|s| named_paths(&s.code)).collect();
    for (source, named) in sources.iter().zip(&named) {
        let mut map = BTreeMap::new();
        for path in &named.reexports {
            if let Some(target) = absolute(path, &source.module, &tree) {
                if let Some(name) = target.last().filter(|n| *n != "*") {
                    map.insert(name.clone(), target);
                }
            }
        }
        tree.reexports.insert(source.module.clone(), map);
    }
    let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (source, named) in sources.iter().zip(&named) {
        let edges = graph.entry(source.module.clone()).or_default();
        for path in named.uses.iter().chain(&named.inline) {
            let Some(target) = absolute(path, &source.module, &tree) else {
                continue;
            };
            if let Some(file) = file_of(&target, &tree, 0) {
                if file != source.module && !file.is_empty() {
                    edges.insert(file);
                }
            }
        }
    }
    graph
}

/// Groups of more than one node that reach each other (Tarjan's strongly connected components).
fn circles<N: Ord + Clone>(graph: &BTreeMap<N, BTreeSet<N>>) -> Vec<Vec<N>> {
    struct State<N> {
        index: BTreeMap<N, usize>,
        low: BTreeMap<N, usize>,
        stack: Vec<N>,
        on_stack: BTreeSet<N>,
        found: Vec<Vec<N>>,
    }
    fn visit<N: Ord + Clone>(node: &N, graph: &BTreeMap<N, BTreeSet<N>>, s: &mut State<N>) {
        let i = s.index.len();
        s.index.insert(node.clone(), i);
        s.low.insert(node.clone(), i);
        s.stack.push(node.clone());
        s.on_stack.insert(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if !s.index.contains_key(next) {
                visit(next, graph, s);
                let low = s.low[node].min(s.low[next]);
                s.low.insert(node.clone(), low);
            } else if s.on_stack.contains(next) {
                let low = s.low[node].min(s.index[next]);
                s.low.insert(node.clone(), low);
            }
        }
        if s.low[node] == s.index[node] {
            let mut component = Vec::new();
            while let Some(top) = s.stack.pop() {
                s.on_stack.remove(&top);
                let done = &top == node;
                component.push(top);
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node) {
            visit(node, graph, &mut state);
        }
    }
    state.found
}

fn show(module: &[String]) -> String {
    format!("src/{}", module.join("/"))
}

#[test]
fn every_module_stands_on_a_floor() {
    let graph = file_graph();
    let unplaced: BTreeSet<&str> = graph
        .keys()
        .filter_map(|module| module.first())
        .map(String::as_str)
        .filter(|top| floor_of(top).is_none())
        .collect();
    assert!(unplaced.is_empty(), "modules on no floor: {unplaced:?}");
}

#[test]
fn imports_only_point_down() {
    let mut up = Vec::new();
    for (from, targets) in file_graph() {
        let Some(from_floor) = from.first().and_then(|m| floor_of(m)) else {
            continue;
        };
        for to in targets {
            let Some(to_floor) = to.first().and_then(|m| floor_of(m)) else {
                continue;
            };
            if to_floor > from_floor {
                up.push(format!("{} -> {}", show(&from), show(&to)));
            }
        }
    }
    assert!(
        up.is_empty(),
        "imports that run up the floors:\n{}",
        up.join("\n")
    );
}

#[test]
fn no_folder_imports_itself_through_others() {
    let mut folders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, targets) in file_graph() {
        let Some(from_top) = from.first() else {
            continue;
        };
        let edges = folders.entry(from_top.clone()).or_default();
        edges.extend(
            targets
                .iter()
                .filter_map(|to| to.first())
                .filter(|to_top| *to_top != from_top)
                .cloned(),
        );
    }
    let found = circles(&folders);
    assert!(found.is_empty(), "folders in a circle: {found:?}");
}

#[test]
fn few_files_import_each_other_in_a_circle() {
    let found = circles(&file_graph());
    let shown: Vec<String> = found
        .iter()
        .map(|c| c.iter().map(|m| show(m)).collect::<Vec<_>>().join(", "))
        .collect();
    assert!(
        found.len() <= MAX_FILE_CIRCLES,
        "{} file circles (at most {MAX_FILE_CIRCLES}):\n{}",
        found.len(),
        shown.join("\n")
    );
}

#[test]
fn the_reader_sees_the_imports_it_checks() {
    // A check that reads nothing passes everything: the reader must find known imports.
    let graph = file_graph();
    let edge = |from: &[&str], to: &[&str]| {
        let from: Vec<String> = from.iter().map(|s| s.to_string()).collect();
        let to: Vec<String> = to.iter().map(|s| s.to_string()).collect();
        graph
            .get(&from)
            .is_some_and(|targets| targets.contains(&to))
    };
    assert!(edge(&["controller", "context"], &["controller", "pacing"]));
    assert!(edge(
        &["jobs", "certificate"],
        &["jobs", "certificate_step"]
    ));
    let (code, tests) = strip_test_items(&strip_comments_and_strings(
        "use crate::a::{b::C, d::{E, F as G}};\n// use crate::up;\n#[cfg(test)]\nmod fakes;\n\
         #[cfg(test)]\nmod tests { use crate::sim::X; }\nfn f() { crate::h::i(\"crate::s\"); }",
    ));
    assert_eq!(tests, vec!["fakes".to_string()]);
    let named = named_paths(&code);
    assert_eq!(
        named.uses,
        ["crate::a::b::C", "crate::a::d::E", "crate::a::d::F"]
    );
    assert_eq!(named.inline, ["crate::h::i"]);
    let graph: BTreeMap<u8, BTreeSet<u8>> = [(1, [2].into()), (2, [3].into()), (3, [1].into())]
        .into_iter()
        .collect();
    assert_eq!(circles(&graph), vec![vec![1, 2, 3]]);
}
