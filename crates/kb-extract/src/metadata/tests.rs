//! Tests of the metadata rules: front matter, sidecars, the keys kb reads or refuses.

use super::super::tests::md;
use super::*;
use crate::{LoadError, load_file, parse_bytes};

#[test]
fn front_matter_gives_title_and_groups_and_is_removed_from_text() {
    let doc = md("---\ntitle: Leave Policy\ngroups: [hr, finance]\ntags:\n  - leave\n---\n# Leave\n\nBody.\n").unwrap();

    assert_eq!(doc.title, "Leave Policy");
    assert_eq!(doc.front_matter.groups, vec!["hr", "finance"]);
    assert_eq!(doc.front_matter.tags, vec!["leave"]);
    assert!(doc.text.starts_with("# Leave"));
}

#[test]
fn front_matter_scalars_of_any_type_are_read_as_text() {
    let doc =
        md("---\ntitle: 2026\ntags: [holidays, 2026, true]\ngroups: hr\n---\nBody.\n").unwrap();

    assert_eq!(doc.title, "2026");
    assert_eq!(doc.front_matter.tags, vec!["holidays", "2026", "true"]);
    assert_eq!(doc.front_matter.groups, vec!["hr"]);
}

#[test]
fn an_effective_date_that_is_not_an_iso_date_fails_the_file() {
    let ok = md("---\neffective_date: 2026-03-01\n---\nBody.\n").unwrap();
    assert_eq!(
        ok.front_matter.effective_date,
        NaiveDate::from_ymd_opt(2026, 3, 1)
    );

    for bad in ["2026-13-01", "01/03/2026", "2026-3-1", "soon"] {
        let err = md(&format!("---\neffective_date: {bad}\n---\nBody.\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("front matter: effective_date {bad:?} is not a date; write it as YYYY-MM-DD")
        );
    }
}

#[test]
fn a_sidecar_gives_any_format_its_metadata_and_front_matter_wins_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("handbook.txt");
    std::fs::write(&txt, "Plain handbook text.\n").unwrap();
    std::fs::write(
        sidecar_path(&txt),
        "title: Staff Handbook\nowner: People Team\neffective_date: 2026-02-01\ntags: [handbook]\ngroups: [hr, finance]\n",
    )
    .unwrap();
    let md_path = dir.path().join("leave.md");
    std::fs::write(&md_path, "---\ntitle: Leave\ngroups: [hr]\n---\nBody.\n").unwrap();
    std::fs::write(
        sidecar_path(&md_path),
        "title: Ignored\ntags: leave\ngroups: [all]\n",
    )
    .unwrap();

    let txt = load_file(&txt, 1 << 20).unwrap();
    let md = load_file(&md_path, 1 << 20).unwrap();

    assert_eq!(txt.title, "Staff Handbook");
    assert_eq!(txt.front_matter.owner.as_deref(), Some("People Team"));
    assert_eq!(
        txt.front_matter.effective_date,
        NaiveDate::from_ymd_opt(2026, 2, 1)
    );
    assert_eq!(txt.front_matter.groups, ["hr", "finance"]);
    assert_eq!(md.title, "Leave");
    assert_eq!(md.front_matter.groups, ["hr"]);
    assert_eq!(
        md.front_matter.tags,
        ["leave"],
        "completed from the sidecar"
    );
}

#[test]
fn a_sidecar_with_an_unknown_field_or_a_bad_date_fails_its_document() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("a.txt");
    std::fs::write(&doc, "text\n").unwrap();

    std::fs::write(sidecar_path(&doc), "group: hr\n").unwrap();
    let typo = load_file(&doc, 1 << 20).unwrap_err().to_string();
    std::fs::write(sidecar_path(&doc), "effective_date: 2026-02-30\n").unwrap();
    let date = load_file(&doc, 1 << 20).unwrap_err().to_string();
    std::fs::write(sidecar_path(&doc), "- a list\n").unwrap();
    let list = load_file(&doc, 1 << 20).unwrap_err().to_string();

    assert!(
        typo.starts_with("sidecar a.txt.meta.yaml: unknown field(s) group"),
        "{typo}"
    );
    assert!(date.contains("\"2026-02-30\" is not a date"), "{date}");
    assert!(list.contains("not a YAML mapping"), "{list}");
}

fn failure(text: &str) -> String {
    md(text)
        .expect_err("the file must fail, not be ingested under the default groups")
        .to_string()
}

#[test]
fn an_unknown_front_matter_key_fails_naming_it_and_the_keys_kb_reads() {
    let err = failure("---\ntitle: Leave\nreviewer: Sam\nstatus: final\n---\nBody.\n");

    assert!(
        err.starts_with(
            "front matter: unknown field(s) reviewer, status (kb reads title, owner, effective_date, tags, groups and ignores aliases, author,"
        ),
        "{err}"
    );
    assert!(!err.contains("did you mean"), "{err}");
}

#[test]
fn a_key_that_looks_like_an_access_field_fails_asking_did_you_mean_groups() {
    for key in [
        "group",
        "Groups",
        "GROUPS",
        "Group",
        "acl",
        "ACL",
        "access",
        "audience",
        "visibility",
        "permissions",
        "roles",
        "readers",
        "allowed_groups",
        "allowed-groups",
        "allowedGroups",
        "gruops",
        "grups",
        "groupss",
        "private",
        "confidential",
    ] {
        let err = failure(&format!("---\n{key}: [finance]\n---\nSalary bands.\n"));

        assert_eq!(
            err,
            format!(
                "front matter: unknown field(s) {key}; did you mean groups? only groups sets who may read a document (kb reads title, owner, effective_date, tags, groups)"
            ),
            "{key}"
        );
    }
}

#[test]
fn keys_that_site_generators_write_are_ignored_and_groups_still_apply() {
    let ignored: String = IGNORED_FRONT_MATTER_KEYS
        .iter()
        .map(|k| format!("{k}: something\n"))
        .collect();

    let doc = md(&format!(
        "---\ntitle: Salaries\n{ignored}groups: [finance]\n---\n# Salaries\n"
    ))
    .unwrap();

    assert_eq!(doc.front_matter.groups, ["finance"]);
    assert_eq!(doc.text, "# Salaries");
}

#[test]
fn no_ignored_key_looks_like_an_access_field() {
    for key in IGNORED_FRONT_MATTER_KEYS {
        assert!(!looks_like_an_access_field(key), "{key}");
    }
    for key in METADATA_FIELDS.iter().filter(|k| **k != "groups") {
        assert!(!looks_like_an_access_field(key), "{key}");
    }
}

#[test]
fn a_sidecar_rejects_the_keys_front_matter_ignores_and_asks_about_access_fields() {
    let ignored = parse_sidecar("author: Sam\n").unwrap_err();
    let access = parse_sidecar("audience: [finance]\n").unwrap_err();

    assert_eq!(
        ignored,
        "unknown field(s) author (a sidecar has title, owner, effective_date, tags, groups)"
    );
    assert_eq!(
        access,
        "unknown field(s) audience; did you mean groups? only groups sets who may read a document (a sidecar has title, owner, effective_date, tags, groups)"
    );
}

#[test]
fn front_matter_that_is_never_closed_fails_the_file() {
    for text in [
        "---\ntitle: Salaries\ngroups: [finance]\n\n# Salaries\n\nBands.\n",
        "---\r\ngroups: [finance]\r\n# Salaries\r\n",
        "---\ngroups: [finance]\n----\nBands.\n",
        "---\n",
    ] {
        let err = md(text).unwrap_err();

        assert!(
            matches!(err, LoadError::UnclosedFrontMatter),
            "{text:?}: {err}"
        );
        assert_eq!(
            err.to_string(),
            "front matter opened with --- on line 1 is never closed; add a line with --- after it"
        );
    }
}

#[test]
fn a_byte_order_mark_before_the_front_matter_is_dropped_and_its_groups_apply() {
    let bom = b"\xef\xbb\xbf";
    let text = b"---\ntitle: Salaries\ngroups: [finance]\n---\n# Salaries\n";
    for bytes in [[&bom[..], text].concat(), [&bom[..], bom, text].concat()] {
        let doc = parse_bytes(Path::new("salaries.md"), SourceFormat::Markdown, &bytes).unwrap();

        assert_eq!(doc.front_matter.groups, ["finance"]);
        assert_eq!(doc.title, "Salaries");
        assert_eq!(doc.text, "# Salaries");
    }
}

#[test]
fn front_matter_below_blank_lines_or_indented_fails_the_file() {
    for (text, line) in [
        ("\n---\ngroups: [finance]\n---\nBands.\n", 2),
        (
            "  \n\t\n---\ntitle: Salaries\ngroups:\n  - finance\n---\nBands.\n",
            3,
        ),
        ("\r\n---\r\ngroups: [finance]\r\n---\r\nBands.\r\n", 2),
        ("  ---\ngroups: [finance]\n---\nBands.\n", 1),
        ("\n---\ngroup: finance\n---\nBands.\n", 2),
        // never closed either
        ("\n---\ngroups: [finance]\n\n# Salaries\n", 2),
    ] {
        let err = md(text).unwrap_err();

        assert_eq!(
            err.to_string(),
            format!(
                "front matter must start on the first line; remove the blank lines or spaces before the --- on line {line}"
            ),
            "{text:?}"
        );
    }
}

#[test]
fn markdown_with_rules_and_no_front_matter_loads_as_it_is() {
    for text in [
        "# Leave\n\nIntro.\n\n---\n\ntitle: not metadata here\n\n---\n\nMore.\n",
        "\n---\n\nA page that opens with a rule.\n\n---\n\nEnd.\n",
        "\n---\nNote: read this first.\n---\n\nBody.\n",
        "\n---\n# Leave\n\nThe first line after the rule is a heading.\n",
    ] {
        let doc = md(text).unwrap();

        assert_eq!(doc.text, text.trim_end(), "{text:?}");
        assert_eq!(doc.front_matter, FrontMatter::default());
    }
}

#[test]
fn toml_front_matter_fails_the_file() {
    let err = md("+++\ntitle = \"Salaries\"\ngroups = [\"finance\"]\n+++\nBands.\n").unwrap_err();

    assert_eq!(
        err.to_string(),
        "front matter in TOML (+++) is not read; write it in YAML between --- lines"
    );
}

#[test]
fn front_matter_that_is_not_a_mapping_fails_the_file() {
    let err = failure("---\nWelcome to the handbook.\n---\nBody.\n");

    assert_eq!(err, "front matter: not a YAML mapping of metadata fields");
}

#[test]
fn empty_groups_fail_in_front_matter_and_in_sidecars() {
    for groups in [
        "groups: []",
        "groups:",
        "groups: ~",
        "groups: \"\"",
        "groups: [\"\", \"  \"]",
        "groups:\n  - \"\"",
    ] {
        let front = failure(&format!("---\n{groups}\n---\nBands.\n"));
        let sidecar = parse_sidecar(&format!("{groups}\n")).unwrap_err();

        let expected = r#"groups is empty; name at least one group ("all" for everyone)"#;
        assert_eq!(front, format!("front matter: {expected}"), "{groups:?}");
        assert_eq!(sidecar, expected, "{groups:?}");
    }
}

#[test]
fn one_group_string_with_commas_or_spaces_fails_with_a_hint_to_write_a_list() {
    let comma = failure("---\ngroups: \"hr, finance\"\n---\nBands.\n");
    let space = parse_sidecar("groups: hr finance\n").unwrap_err();
    let item = failure("---\ngroups: [\"hr,finance\", it]\n---\nBands.\n");

    assert_eq!(
        comma,
        r#"front matter: groups "hr, finance" is one group name with a comma or space in it; write a YAML list: groups: [hr, finance]"#
    );
    assert_eq!(
        space,
        r#"groups "hr finance" is one group name with a comma or space in it; write a YAML list: groups: [hr, finance]"#
    );
    assert_eq!(
        item,
        r#"front matter: group name "hr,finance" has a comma in it; write one group per item: groups: [hr, finance, it]"#
    );
    assert_eq!(
        md("---\ngroups: \" hr \"\n---\nBands.\n")
            .unwrap()
            .front_matter
            .groups,
        ["hr"]
    );
}

#[test]
fn a_tag_with_a_comma_fails_but_empty_tags_are_fine() {
    let err = failure("---\ntags: \"leave, travel\"\n---\nBody.\n");
    let empty = md("---\ntags: []\ngroups: [hr]\n---\nBody.\n").unwrap();

    assert_eq!(
        err,
        r#"front matter: tag "leave, travel" has a comma in it; write a YAML list: tags: [leave, travel]"#
    );
    assert!(empty.front_matter.tags.is_empty());
    assert_eq!(empty.front_matter.groups, ["hr"]);
}

#[test]
fn a_sidecar_saved_with_a_byte_order_mark_is_read() {
    let front = parse_sidecar("\u{feff}groups: [finance]\n").unwrap();

    assert_eq!(front.groups, ["finance"]);
}

#[test]
fn a_bad_sidecar_fails_its_document_even_when_front_matter_sets_groups() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("salaries.md");
    std::fs::write(&doc, "---\ngroups: [finance]\n---\nBands.\n").unwrap();
    std::fs::write(sidecar_path(&doc), "groups: []\n").unwrap();

    let err = load_file(&doc, 1 << 20).unwrap_err().to_string();

    assert_eq!(
        err,
        r#"sidecar salaries.md.meta.yaml: groups is empty; name at least one group ("all" for everyone)"#
    );
}

#[test]
fn text_and_html_files_that_start_with_front_matter_setting_groups_fail() {
    let front = "---\ntitle: Salaries\ngroups: [finance]\n---\nSalary bands.\n";
    let acl = "\n---\nacl: finance\n---\n<p>Salary bands.</p>\n";

    let text = parse_bytes(Path::new("a.txt"), SourceFormat::Text, front.as_bytes());
    let html = parse_bytes(Path::new("a.html"), SourceFormat::Html, acl.as_bytes());

    assert_eq!(
        text.unwrap_err().to_string(),
        "text files have no front matter, so these groups would be ignored; put the fields in a sidecar (the file name plus .meta.yaml) or save the file as .md"
    );
    assert!(matches!(
        html,
        Err(LoadError::FrontMatterNotRead {
            format: SourceFormat::Html
        })
    ));
}

#[test]
fn text_and_html_files_with_rules_or_other_yaml_load() {
    for text in [
        "Intro.\n---\ngroups: [finance]\n---\n",
        "---\ntitle: Notes\n---\nNotes.\n",
        "---\nA rule, then text.\n",
    ] {
        let doc = parse_bytes(Path::new("a.txt"), SourceFormat::Text, text.as_bytes()).unwrap();

        assert_eq!(doc.text, text.trim_end());
    }
    let jekyll = "---\nlayout: default\n---\n<p>Welcome.</p>\n";
    let page = parse_bytes(Path::new("a.html"), SourceFormat::Html, jekyll.as_bytes());
    assert!(page.is_ok(), "{page:?}");
}

#[test]
fn broken_front_matter_is_an_error_not_a_panic() {
    assert!(matches!(
        md("---\ntitle: [unclosed\n---\nbody\n"),
        Err(LoadError::FrontMatter(_))
    ));
}
