//! HTML pages → Markdown.
//!
//! The page is parsed as a browser would (`scraper`, on `html5ever`), then walked once without
//! recursion. Kept: headings (`#`), paragraphs, line breaks, lists (`- `, `1. `, nested), data
//! tables (pipe tables, caption as a paragraph before), preformatted text. Dropped with
//! everything inside them: `head` (the `<title>` is read separately), `script`, `style`, `nav`,
//! `noscript`, `template`, embedded media and form controls, and anything `hidden`,
//! `aria-hidden="true"` or `role="navigation"`. A table that holds headings, lists or other
//! tables is page layout, not data: its cells are read as ordinary blocks.

use super::MarkdownWriter;
use crate::{LoadError, SourceFormat};
use ego_tree::NodeRef;
use ego_tree::iter::Edge;
use scraper::{Html, Node};
use std::collections::HashSet;

/// An HTML page as Markdown, with its `<title>` if it has one.
#[derive(Debug)]
pub(crate) struct HtmlText {
    pub(crate) title: Option<String>,
    pub(crate) markdown: String,
}

/// Elements dropped together with their content.
const DROPPED: &[&str] = &[
    "head", "script", "style", "nav", "noscript", "template", "svg", "math", "canvas", "iframe",
    "object", "embed", "audio", "video", "picture", "map", "button", "select", "input", "textarea",
    "dialog",
];

/// Elements that end the running paragraph when they open or close.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "aside",
    "blockquote",
    "address",
    "figure",
    "figcaption",
    "details",
    "summary",
    "dl",
    "dt",
    "dd",
    "fieldset",
    "legend",
    "form",
    "center",
    "hr",
    "body",
    "html",
];

/// How deeply elements may nest. Real pages stay far below it; the HTML parser takes time
/// quadratic in the depth, so a page of a million unclosed `<div>`s would stall an ingest.
const MAX_DEPTH: usize = 2000;

/// Converts a page to Markdown.
pub(crate) fn to_markdown(source: &str) -> Result<HtmlText, LoadError> {
    if nesting_depth(source) > MAX_DEPTH {
        return Err(LoadError::Corrupt {
            format: SourceFormat::Html,
            detail: format!("elements nest more than {MAX_DEPTH} deep; refusing"),
        });
    }
    let page = Html::parse_document(source);
    let title = page
        .tree
        .root()
        .descendants()
        .find(|n| element_name(n) == Some("title"))
        .map(|n| super::collapse_whitespace(&text_of(n)))
        .filter(|t| !t.is_empty());
    let mut walker = Walker::default();
    walker.walk(page.tree.root());
    Ok(HtmlText {
        title,
        markdown: walker.out.finish(),
    })
}

/// Elements that have no end tag, or whose end tag the parser implies: they do not nest.
const NOT_NESTING: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr", "param", "keygen", "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th",
    "tbody", "thead", "tfoot", "colgroup", "rb", "rt", "rp", "html", "head", "body",
];

/// Common HTML elements that hold content: `<div/>` opens a `div` like `<div>` does.
const HTML_CONTAINERS: &[&str] = &[
    "div",
    "span",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "aside",
    "nav",
    "a",
    "b",
    "i",
    "u",
    "s",
    "em",
    "strong",
    "small",
    "big",
    "font",
    "table",
    "ul",
    "ol",
    "dl",
    "blockquote",
    "form",
    "label",
    "center",
    "code",
    "pre",
    "sub",
    "sup",
    "abbr",
    "cite",
    "q",
    "mark",
    "ins",
    "del",
    "figure",
    "details",
    "summary",
    "button",
    "select",
    "textarea",
];

/// An upper estimate of how deeply a page's elements nest, from its tags alone.
fn nesting_depth(source: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut rest = source;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        let closing = rest.starts_with('/');
        let name_start = usize::from(closing);
        let name_len = rest[name_start..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len() - name_start);
        if name_len == 0 || !rest[name_start..].starts_with(|c: char| c.is_ascii_alphabetic()) {
            continue;
        }
        let name = rest[name_start..name_start + name_len].to_ascii_lowercase();
        let tag_end = rest.find('>').unwrap_or(rest.len());
        // `<x/>` closes itself only in SVG and MathML; HTML ignores the slash.
        let self_closing =
            rest[..tag_end].ends_with('/') && !HTML_CONTAINERS.contains(&name.as_str());
        if NOT_NESTING.contains(&name.as_str()) || self_closing {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
        } else {
            depth += 1;
            max = max.max(depth);
        }
    }
    max
}

#[derive(Debug)]
struct List {
    ordered: bool,
    next: u64,
}

#[derive(Debug, Default)]
struct Table {
    caption: String,
    rows: Vec<Vec<String>>,
    row: Option<Vec<String>>,
}

#[derive(Debug, Default)]
struct Walker {
    out: MarkdownWriter,
    /// Text of the block being read.
    inline: String,
    heading: Option<usize>,
    pre_depth: usize,
    lists: Vec<List>,
    /// The marker of a list item whose first block has not been written yet.
    marker: Option<String>,
    tables: Vec<Table>,
    /// Text of the open table cell or caption, if any.
    cell: Option<String>,
    layout_tables: HashSet<ego_tree::NodeId>,
}

/// A hard line break inside the running text (`<br>`), kept through whitespace collapsing.
const BREAK: char = '\u{2028}';

impl Walker {
    fn walk(&mut self, root: NodeRef<'_, Node>) {
        let mut skipping: Option<ego_tree::NodeId> = None;
        for edge in root.traverse() {
            match edge {
                Edge::Open(node) => {
                    if skipping.is_some() {
                        continue;
                    }
                    match node.value() {
                        Node::Text(text) => self.text(text),
                        Node::Element(el) => {
                            if is_dropped(el) {
                                skipping = Some(node.id());
                            } else {
                                self.open(node, el.name());
                            }
                        }
                        _ => {}
                    }
                }
                Edge::Close(node) => {
                    if skipping == Some(node.id()) {
                        skipping = None;
                    } else if skipping.is_none()
                        && let Node::Element(el) = node.value()
                    {
                        self.close(node, el.name());
                    }
                }
            }
        }
        self.flush();
    }

    fn text(&mut self, text: &str) {
        let target = self.cell.as_mut().unwrap_or(&mut self.inline);
        super::push_clean(target, text);
    }

    fn in_data_table(&self) -> bool {
        !self.tables.is_empty()
    }

    fn open(&mut self, node: NodeRef<'_, Node>, name: &str) {
        if let Some(cell) = &mut self.cell {
            // Inside a data-table cell everything is inline text of that cell.
            if matches!(name, "br" | "p" | "div" | "li" | "dd" | "dt") {
                cell.push(' ');
            }
            return;
        }
        match name {
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                self.flush();
                self.heading = name[1..].parse().ok();
            }
            "br" => self.inline.push(BREAK),
            "pre" => {
                self.flush();
                self.pre_depth += 1;
            }
            "ul" | "ol" | "menu" => {
                self.flush();
                let start = node_attr(node, "start").and_then(|s| s.trim().parse().ok());
                self.lists.push(List {
                    ordered: name == "ol",
                    next: start.unwrap_or(1),
                });
            }
            "li" => {
                self.flush();
                self.marker = Some(match self.lists.last_mut() {
                    Some(list) if list.ordered => {
                        let n = list.next;
                        list.next += 1;
                        format!("{n}.")
                    }
                    _ => "-".to_owned(),
                });
            }
            "table" => {
                self.flush();
                if is_layout_table(node) {
                    self.layout_tables.insert(node.id());
                } else {
                    self.tables.push(Table::default());
                }
            }
            "caption" if self.in_data_table() => self.cell = Some(String::new()),
            "tr" if self.in_data_table() => {
                if let Some(table) = self.tables.last_mut() {
                    table.row = Some(Vec::new());
                }
            }
            "td" | "th" if self.in_data_table() => self.cell = Some(String::new()),
            "tr" | "td" | "th" | "caption" => self.flush(),
            _ if BLOCKS.contains(&name) => self.flush(),
            _ => {}
        }
    }

    fn close(&mut self, node: NodeRef<'_, Node>, name: &str) {
        match name {
            "td" | "th" | "caption" if self.in_data_table() && self.cell.is_some() => {
                let text = self.cell.take().unwrap_or_default();
                let Some(table) = self.tables.last_mut() else {
                    return;
                };
                if name == "caption" {
                    table.caption = text;
                } else {
                    // A cell outside any <tr> (bad markup) starts its own row.
                    table.row.get_or_insert_with(Vec::new).push(text);
                }
            }
            _ if self.cell.is_some() => {
                if matches!(name, "p" | "div" | "li") {
                    self.cell
                        .as_mut()
                        .expect("BUG: cell checked above")
                        .push(' ');
                }
            }
            "tr" if self.in_data_table() => {
                if let Some(table) = self.tables.last_mut()
                    && let Some(row) = table.row.take()
                    && !row.is_empty()
                {
                    table.rows.push(row);
                }
            }
            "table" => {
                if !self.layout_tables.remove(&node.id()) {
                    self.flush();
                    if let Some(mut table) = self.tables.pop() {
                        if let Some(row) = table.row.take().filter(|r| !r.is_empty()) {
                            table.rows.push(row);
                        }
                        self.out.paragraph(&table.caption);
                        self.out.table(&table.rows);
                    }
                } else {
                    self.flush();
                }
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => self.flush(),
            "pre" => {
                self.flush_pre();
                self.pre_depth = self.pre_depth.saturating_sub(1);
            }
            "ul" | "ol" | "menu" => {
                self.flush();
                self.lists.pop();
                if self.lists.is_empty() {
                    self.out.end_list();
                }
            }
            "li" => {
                self.flush();
                self.marker = None;
            }
            "tr" | "td" | "th" | "caption" => self.flush(),
            _ if BLOCKS.contains(&name) => self.flush(),
            _ => {}
        }
    }

    /// Writes the running text as the block it belongs to.
    fn flush(&mut self) {
        if self.pre_depth > 0 {
            self.flush_pre();
            return;
        }
        let text = std::mem::take(&mut self.inline);
        if let Some(level) = self.heading.take() {
            self.out.heading(level, &text.replace(BREAK, " "));
            return;
        }
        let text = text
            .split(BREAK)
            .map(super::collapse_whitespace)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>();
        if text.is_empty() {
            return;
        }
        if !self.lists.is_empty() || self.marker.is_some() {
            let depth = self.lists.len().saturating_sub(1);
            let marker = self.marker.take().unwrap_or_default();
            self.out.list_item(depth, &marker, &text.join(" "));
        } else {
            self.out.paragraph(&text.join("\n"));
        }
    }

    fn flush_pre(&mut self) {
        let text = std::mem::take(&mut self.inline).replace(BREAK, "\n");
        self.out.preformatted(&text);
    }
}

fn element_name<'a>(node: &NodeRef<'a, Node>) -> Option<&'a str> {
    match node.value() {
        Node::Element(el) => Some(el.name()),
        _ => None,
    }
}

fn node_attr<'a>(node: NodeRef<'a, Node>, name: &str) -> Option<&'a str> {
    match node.value() {
        Node::Element(el) => el.attr(name),
        _ => None,
    }
}

fn is_dropped(el: &scraper::node::Element) -> bool {
    DROPPED.contains(&el.name())
        || el.attr("hidden").is_some()
        || el
            .attr("aria-hidden")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || el
            .attr("role")
            .is_some_and(|v| v.eq_ignore_ascii_case("navigation"))
}

/// A table used to lay out a page rather than to hold data.
fn is_layout_table(table: NodeRef<'_, Node>) -> bool {
    node_attr(table, "role").is_some_and(|r| r == "presentation" || r == "none")
        || table.descendants().skip(1).any(|n| {
            matches!(
                element_name(&n),
                Some("table" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ul" | "ol" | "pre")
            )
        })
}

fn text_of(node: NodeRef<'_, Node>) -> String {
    node.descendants()
        .filter_map(|n| match n.value() {
            Node::Text(t) => Some(&**t),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(html: &str) -> String {
        to_markdown(html).unwrap().markdown
    }

    #[test]
    fn headings_paragraphs_and_inline_markup_become_markdown() {
        let out =
            md("<h1>Leave</h1><p>You get <b>25</b>\n days.</p><h3>Carry  over</h3><p>a<br>b</p>");

        assert_eq!(out, "# Leave\n\nYou get 25 days.\n\n### Carry over\n\na\nb");
    }

    #[test]
    fn scripts_styles_navigation_and_hidden_content_are_dropped() {
        let out = md(r#"<nav>Home</nav><script>x()</script><style>p{}</style>
            <div role="navigation">Menu</div><p hidden>secret</p><p aria-hidden="true">icon</p>
            <p>Kept</p>"#);

        assert_eq!(out, "Kept");
    }

    #[test]
    fn nested_and_numbered_lists_keep_their_structure() {
        let out = md(
            "<ul><li>a<ul><li>b</li></ul></li><li>c</li></ul><ol start=3><li>x</li><li>y</li></ol><p>after</p>",
        );

        assert_eq!(out, "- a\n  - b\n- c\n\n3. x\n4. y\n\nafter");
    }

    #[test]
    fn data_tables_become_pipe_tables_and_layout_tables_do_not() {
        let data = md(
            "<table><caption>Caps</caption><tr><th>City</th><th>Cap</th></tr><tr><td>Berlin</td><td><p>180</p><p>EUR</p></td></tr></table>",
        );
        let layout = md("<table><tr><td><h2>Menu</h2><p>Body</p></td></tr></table>");

        assert_eq!(
            data,
            "Caps\n\n| City | Cap |\n| --- | --- |\n| Berlin | 180 EUR |"
        );
        assert_eq!(layout, "## Menu\n\nBody");
    }

    #[test]
    fn title_comes_from_the_title_element() {
        let page = to_markdown(
            "<html><head><title> Remote\nWork </title></head><body><p>x</p></body></html>",
        )
        .unwrap();

        assert_eq!(page.title.as_deref(), Some("Remote Work"));
        assert_eq!(page.markdown, "x");
    }

    #[test]
    fn preformatted_text_keeps_its_lines() {
        let out = md("<pre>  line one\n# not a heading\n</pre>");

        assert_eq!(out, "  line one\n\\# not a heading");
    }

    #[test]
    fn deeply_nested_markup_is_read_up_to_the_depth_limit_and_refused_beyond() {
        let nested = |n: usize| "<div>".repeat(n) + "deep" + &"</div>".repeat(n);

        assert!(
            to_markdown(&nested(MAX_DEPTH))
                .unwrap()
                .markdown
                .contains("deep")
        );
        assert!(matches!(
            to_markdown(&nested(MAX_DEPTH + 1)),
            Err(LoadError::Corrupt { .. })
        ));
    }

    #[test]
    fn elements_that_close_themselves_do_not_count_as_nesting() {
        let html = "<p>para<li>item<br><img src=x><hr/>".repeat(MAX_DEPTH * 2);

        assert!(nesting_depth(&html) < 3);
        assert_eq!(
            nesting_depth("<svg><path d=x/><path/></svg><div/><div/>"),
            2
        );
        assert!(to_markdown(&html).is_ok());
    }
}
