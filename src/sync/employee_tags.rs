//! reteach tags from `spec.tags` (issue 17): which tags an employee should carry, which tags the
//! resource owns, and the per-user difference. Pure; the job turns the difference into requests.
//!
//! Ownership: the resource only ever touches tags it owns — those named in `status.managedTags`
//! (every tag it has set before) and those its rules give in the current run. A tag set by hand
//! under another name is never removed. Tag names are compared ignoring case and surrounding
//! space, so a tag reteach stores as `sales` satisfies a wanted `Sales` and no run re-sends it.

use std::collections::{BTreeMap, BTreeSet};

use super::field_source::FieldSource;
use super::model::{CustomerTag, PersonioEmployee};

/// Most rules in `spec.tags`.
pub const MAX_TAG_RULES: usize = 20;
/// Longest tag name the operator sets, in characters. reteach documents no limit; a rendered tag
/// that is longer is not set (and reported), rather than cut into a different tag.
pub const MAX_TAG_CHARS: usize = 100;
/// Most names `status.managedTags` holds. A new tag beyond it is not set (and reported): a tag
/// the resource could not remember owning could never be removed again.
pub const MAX_MANAGED_TAGS: usize = 1000;

/// One rule of `spec.tags`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagRule {
    /// Where the tag's text comes from: an attribute (optionally through a value map), a
    /// constant or a template. Never [`FieldSource::Unmapped`].
    pub source: FieldSource,
    /// Put before an attribute's value (`dept:` + `Sales`).
    pub prefix: String,
}

impl TagRule {
    /// The attributes the rule reads.
    pub fn attributes(&self) -> Vec<String> {
        self.source.attributes()
    }

    /// The tag the rule gives `employee`, trimmed; `None` when it renders empty.
    pub fn render(&self, employee: &PersonioEmployee) -> Option<String> {
        let value = self.source.value(employee)?;
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        let tag = format!("{}{value}", self.prefix);
        Some(tag.trim().to_string())
    }
}

/// How two tag names are compared: trimmed, ignoring case.
pub fn tag_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// A tag the rules give but that is not set, and why (no value of the record in it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagNotSet {
    /// The tag of rule `spec.tags[index]` is longer than [`MAX_TAG_CHARS`].
    TooLong {
        /// Index of the rule.
        rule: usize,
    },
    /// `status.managedTags` is full ([`MAX_MANAGED_TAGS`]).
    OwnershipFull,
}

impl TagNotSet {
    /// The PII-free reason for `status.failures`.
    pub fn reason(&self) -> String {
        match self {
            Self::TooLong { rule } => format!(
                "the tag of spec.tags[{rule}] is longer than {MAX_TAG_CHARS} characters; not set"
            ),
            Self::OwnershipFull => format!(
                "a new tag was not set: status.managedTags holds its maximum of {MAX_MANAGED_TAGS} names"
            ),
        }
    }
}

/// The tags the rules give one employee.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WantedTags {
    /// Tag names, one per [`tag_key`], in rule order.
    pub names: Vec<String>,
    /// Rules whose tag is too long.
    pub too_long: Vec<usize>,
}

/// The tags `rules` give `employee`: empty renders give no tag, duplicates (ignoring case) count
/// once, too long ones are left out and noted.
pub fn wanted_tags(rules: &[TagRule], employee: &PersonioEmployee) -> WantedTags {
    let mut wanted = WantedTags::default();
    let mut keys = BTreeSet::new();
    for (index, rule) in rules.iter().enumerate() {
        let Some(tag) = rule.render(employee) else {
            continue;
        };
        if tag.chars().count() > MAX_TAG_CHARS {
            wanted.too_long.push(index);
        } else if keys.insert(tag_key(&tag)) {
            wanted.names.push(tag);
        }
    }
    wanted
}

/// The tags a resource owns in one run: `status.managedTags` plus the tags its rules give in this
/// run, up to [`MAX_MANAGED_TAGS`] names; new tags beyond the bound are refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagOwnership {
    /// Key → name as first recorded.
    owned: BTreeMap<String, String>,
}

impl TagOwnership {
    /// `previous` (from status) plus `wanted`, new names taken in sorted order while there is room.
    pub fn new<'a>(previous: &[String], wanted: impl IntoIterator<Item = &'a str>) -> Self {
        let mut owned = BTreeMap::new();
        for name in previous {
            owned
                .entry(tag_key(name))
                .or_insert_with(|| name.trim().to_string());
        }
        let new: BTreeMap<String, &str> = wanted
            .into_iter()
            .map(|name| (tag_key(name), name))
            .filter(|(key, _)| !owned.contains_key(key))
            .collect();
        for (key, name) in new {
            if owned.len() >= MAX_MANAGED_TAGS {
                break;
            }
            owned.insert(key, name.trim().to_string());
        }
        Self { owned }
    }

    /// Whether the resource owns a tag of this name.
    pub fn owns(&self, name: &str) -> bool {
        self.owned.contains_key(&tag_key(name))
    }

    /// The owned names, sorted by key (`status.managedTags`).
    pub fn names(&self) -> Vec<String> {
        self.owned.values().cloned().collect()
    }

    /// The owned names that are still in use: wanted by an employee of this run or held by one of
    /// `customers`. Only meaningful after a full run that listed every user: a name no user holds
    /// and no rule gives cannot need removing any more.
    pub fn in_use<'a>(
        &self,
        wanted: impl IntoIterator<Item = &'a str>,
        customers: impl IntoIterator<Item = &'a CustomerTag>,
    ) -> Vec<String> {
        let used: BTreeSet<String> = wanted
            .into_iter()
            .chain(customers.into_iter().map(|tag| tag.name.as_str()))
            .map(tag_key)
            .collect();
        self.owned
            .iter()
            .filter(|(key, _)| used.contains(*key))
            .map(|(_, name)| name.clone())
            .collect()
    }
}

/// The tag requests one user needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagChanges {
    /// Names to add.
    pub add: Vec<String>,
    /// Tags the user holds that the resource owns and no rule gives them any more.
    pub remove: Vec<CustomerTag>,
    /// Tags the rules give that are not set, and why.
    pub not_set: Vec<TagNotSet>,
}

impl TagChanges {
    /// Whether any request is needed.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }

    /// Adds of `self` that `held` does not have yet (after a find-or-create returned a user that
    /// already existed).
    pub fn without_held(&self, held: &[CustomerTag]) -> Vec<String> {
        self.add
            .iter()
            .filter(|name| {
                let key = tag_key(name);
                !held.iter().any(|tag| tag_key(&tag.name) == key)
            })
            .cloned()
            .collect()
    }
}

/// The difference between the tags a user holds and those wanted for them: owned wanted tags they
/// lack are added, owned tags they hold and no longer want are removed, everything else is left
/// alone.
pub fn diff_tags(
    wanted: &WantedTags,
    held: &[CustomerTag],
    ownership: &TagOwnership,
) -> TagChanges {
    let held_keys: BTreeSet<String> = held.iter().map(|tag| tag_key(&tag.name)).collect();
    let wanted_keys: BTreeSet<String> = wanted.names.iter().map(|name| tag_key(name)).collect();
    let mut changes = TagChanges::default();
    for name in &wanted.names {
        if !ownership.owns(name) {
            changes.not_set.push(TagNotSet::OwnershipFull);
        } else if !held_keys.contains(&tag_key(name)) {
            changes.add.push(name.clone());
        }
    }
    changes.remove = held
        .iter()
        .filter(|tag| ownership.owns(&tag.name) && !wanted_keys.contains(&tag_key(&tag.name)))
        .cloned()
        .collect();
    changes.not_set.extend(
        wanted
            .too_long
            .iter()
            .map(|&rule| TagNotSet::TooLong { rule }),
    );
    changes
}

/// The tags a new user gets: [`diff_tags`] against a user without tags.
pub fn new_user_tags(wanted: &WantedTags, ownership: &TagOwnership) -> TagChanges {
    diff_tags(wanted, &[], ownership)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(id: &str, name: &str) -> CustomerTag {
        CustomerTag {
            id: id.into(),
            name: name.into(),
        }
    }

    fn wanted(names: &[&str]) -> WantedTags {
        WantedTags {
            names: names.iter().map(|n| n.to_string()).collect(),
            too_long: Vec::new(),
        }
    }

    /// The rule giving `prefix` + what `source` renders.
    fn rule(prefix: &str, source: FieldSource) -> TagRule {
        TagRule {
            source,
            prefix: prefix.into(),
        }
    }

    fn employee() -> PersonioEmployee {
        PersonioEmployee {
            id: "7".into(),
            department: Some(" Sales ".into()),
            office: Some("Berlin".into()),
            ..Default::default()
        }
    }

    #[test]
    fn rules_render_attributes_prefixes_constants_and_templates() {
        let rules = [
            rule("", FieldSource::attribute("department")),
            rule("office:", FieldSource::attribute("office")),
            rule("", FieldSource::Constant("personio".into())),
            rule("", FieldSource::Template("team-{department}".into())),
            // Empty renders give no tag.
            rule("x-", FieldSource::attribute("dynamic_1")),
            rule("", FieldSource::Template("{dynamic_2}".into())),
            // The same tag twice (ignoring case) counts once.
            rule("", FieldSource::Constant("SALES".into())),
        ];
        let wanted = wanted_tags(&rules, &employee());
        assert_eq!(
            wanted.names,
            ["Sales", "office:Berlin", "personio", "team-Sales"]
        );
        assert!(wanted.too_long.is_empty());
    }

    #[test]
    fn a_value_map_renames_and_a_too_long_tag_is_noted_not_cut() {
        let rules = [
            rule(
                "",
                FieldSource::Attribute {
                    name: "department".into(),
                    values: [("Sales".to_string(), "Vertrieb".to_string())].into(),
                },
            ),
            rule("", FieldSource::Constant("x".repeat(MAX_TAG_CHARS + 1))),
        ];
        let wanted = wanted_tags(&rules, &employee());
        assert_eq!(wanted.names, ["Vertrieb"]);
        assert_eq!(wanted.too_long, [1]);
        let changes = diff_tags(&wanted, &[], &TagOwnership::new(&[], ["Vertrieb"]));
        assert_eq!(changes.not_set, [TagNotSet::TooLong { rule: 1 }]);
        assert!(changes.not_set[0].reason().contains("spec.tags[1]"));
    }

    #[test]
    fn a_department_change_swaps_the_tag_and_leaves_hand_set_tags() {
        let ownership = TagOwnership::new(&["Sales".into()], ["Marketing"]);
        let held = [tag("t1", "Sales"), tag("t2", "First aider")];
        let changes = diff_tags(&wanted(&["Marketing"]), &held, &ownership);
        assert_eq!(changes.add, ["Marketing"]);
        assert_eq!(changes.remove, [tag("t1", "Sales")]);
        assert!(changes.not_set.is_empty());
    }

    #[test]
    fn nothing_changes_when_the_user_has_the_tags_ignoring_case() {
        let ownership = TagOwnership::new(&["Sales".into()], ["Sales", "all"]);
        let held = [tag("t1", "sales "), tag("t3", "All"), tag("t2", "VIP")];
        let changes = diff_tags(&wanted(&["Sales", "all"]), &held, &ownership);
        assert!(changes.is_empty(), "{changes:?}");
    }

    #[test]
    fn a_removed_rule_removes_only_owned_tags() {
        let ownership = TagOwnership::new(&["Sales".into(), "all".into()], []);
        let held = [tag("t1", "Sales"), tag("t2", "all"), tag("t3", "VIP")];
        let changes = diff_tags(&WantedTags::default(), &held, &ownership);
        assert!(changes.add.is_empty());
        assert_eq!(changes.remove, [tag("t1", "Sales"), tag("t2", "all")]);
    }

    #[test]
    fn ownership_is_bounded_and_refuses_new_tags_beyond_it() {
        let previous: Vec<String> = (0..MAX_MANAGED_TAGS).map(|i| format!("t{i:04}")).collect();
        let ownership = TagOwnership::new(&previous, ["t0001", "new"]);
        assert_eq!(ownership.names().len(), MAX_MANAGED_TAGS);
        assert!(ownership.owns("T0001"));
        assert!(!ownership.owns("new"));
        let changes = diff_tags(&wanted(&["new", "t0001"]), &[], &ownership);
        assert_eq!(changes.add, ["t0001"]);
        assert_eq!(changes.not_set, [TagNotSet::OwnershipFull]);
        // A hand-set tag of that name is not the resource's either: never removed.
        let held = [tag("t", "new")];
        assert!(diff_tags(&WantedTags::default(), &held, &ownership)
            .remove
            .is_empty());
    }

    #[test]
    fn names_are_sorted_and_unused_ones_can_be_pruned() {
        let ownership = TagOwnership::new(&["b".into(), "Old".into()], ["a", "B"]);
        assert_eq!(ownership.names(), ["a", "b", "Old"]);
        let held = [tag("1", "old")];
        assert_eq!(ownership.in_use(["a"], held.iter()), ["a", "Old"]);
        assert_eq!(ownership.in_use(["a"], []), ["a"]);
    }

    #[test]
    fn a_found_user_only_gets_the_tags_it_lacks() {
        let ownership = TagOwnership::new(&[], ["Sales", "all"]);
        let changes = new_user_tags(&wanted(&["Sales", "all"]), &ownership);
        assert_eq!(changes.add, ["Sales", "all"]);
        assert_eq!(changes.without_held(&[tag("1", "SALES")]), ["all"]);
    }
}
