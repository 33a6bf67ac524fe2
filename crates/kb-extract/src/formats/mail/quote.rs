//! Finding where a reply's quotation of an earlier message starts.
//!
//! A quotation ends the text (a reply written above or below it); what starts it, in the order
//! tried:
//!
//! 1. Outlook's separator (`-----Original Message-----`, `-----原始邮件-----`) or its header
//!    block: a `From:` line with a `Sent:` (or `Date:`) line just after it (`发件人:` with
//!    `发送时间:` / `日期:` in Chinese Outlook), with the `____` rule above it if there is one.
//! 2. An attribution line: `On <date>, <name> wrote:` (over one or two lines), `在 … 写道：`,
//!    `Am … schrieb …:`, `Le … a écrit :` — when what follows is the quotation, not a reply
//!    written between quoted lines: after it, no line of the writer's own follows a `>` line.
//! 3. Otherwise a run of `>` lines (blank lines allowed) that ends the text.
//!
//! The first of 1 or 2 in the text wins (a quotation of a quotation is inside the outer one).

/// Where the quotation starts in `text` (the byte offset of a line start), if there is one.
pub(super) fn quotation_start(text: &str) -> Option<usize> {
    let lines = lines_with_offsets(text);
    let tails = Tails::of(&lines);
    let marker = (0..lines.len())
        .find_map(|i| outlook_start(&lines, i).or_else(|| attribution_start(&lines, &tails, i)));
    marker.or_else(|| trailing_quote_start(&lines))
}

/// What the lines from each index to the end hold, computed once from the end so that testing
/// every candidate line stays linear in the length of the text.
struct Tails {
    /// No line of the writer's own follows a `>` line.
    not_interleaved: Vec<bool>,
    /// Some line is not blank.
    has_text: Vec<bool>,
}

impl Tails {
    fn of(lines: &[(usize, &str)]) -> Self {
        let n = lines.len();
        let mut not_interleaved = vec![true; n + 1];
        let mut has_text = vec![false; n + 1];
        // Every line from here on is quoted or blank.
        let mut only_quoted = vec![true; n + 1];
        for (i, (_, line)) in lines.iter().enumerate().rev() {
            let blank = line.trim().is_empty();
            let quoted = is_quoted(line);
            has_text[i] = has_text[i + 1] || !blank;
            only_quoted[i] = only_quoted[i + 1] && (quoted || blank);
            not_interleaved[i] = if quoted {
                only_quoted[i + 1]
            } else {
                not_interleaved[i + 1]
            };
        }
        Self {
            not_interleaved,
            has_text,
        }
    }
}

/// Each line of `text` (without its line break) and where it starts.
fn lines_with_offsets(text: &str) -> Vec<(usize, &str)> {
    let mut at = 0;
    text.split_inclusive('\n')
        .map(|line| {
            let start = at;
            at += line.len();
            (start, line.trim_end_matches(['\n', '\r']))
        })
        .collect()
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// Outlook's separator line or header block starting at line `i`.
fn outlook_start(lines: &[(usize, &str)], i: usize) -> Option<usize> {
    let line = lines[i].1.trim().trim_matches('*');
    if line.starts_with("-----") {
        let squeezed: String = line
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_lowercase();
        let separator = ["originalmessage", "原始邮件", "原始郵件"]
            .iter()
            .any(|s| squeezed.trim_matches('-') == *s);
        return separator.then_some(lines[i].0);
    }
    let from = starts_with_field(line, &["From", "发件人", "寄件者"]);
    if !from {
        return None;
    }
    let sent_fields = ["Sent", "Date", "发送时间", "日期", "寄件日期"];
    // "From: … Sent: …" on one line (HTML turned to text), or a Sent line within the block.
    let sent_inline = ["Sent:", "发送时间:", "发送时间："]
        .iter()
        .any(|f| line.contains(f));
    let sent_below = lines[i + 1..]
        .iter()
        .take(4)
        .any(|(_, l)| starts_with_field(l.trim().trim_matches('*'), &sent_fields));
    if !(sent_inline || sent_below) {
        return None;
    }
    // Start at the rule Outlook draws above the block, if there is one.
    let rule_above = i
        .checked_sub(1)
        .map(|j| lines[j].1.trim())
        .filter(|l| l.len() >= 10 && l.chars().all(|c| c == '_' || c == '-' || c == '\\'));
    Some(match rule_above {
        Some(_) => lines[i - 1].0,
        None => lines[i].0,
    })
}

/// `line` starts with one of `names` and a colon (ASCII or full-width).
fn starts_with_field(line: &str, names: &[&str]) -> bool {
    names.iter().any(|name| {
        line.strip_prefix(name)
            .map(str::trim_start)
            .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('：'))
    })
}

/// An attribution line ending at line `i` (which may have started on the line before), when
/// a quotation follows it.
fn attribution_start(lines: &[(usize, &str)], tails: &Tails, i: usize) -> Option<usize> {
    let line = lines[i].1.trim();
    let start = if is_attribution(line) {
        lines[i].0
    } else {
        // "On Mon, 3 Mar 2025 at 09:15, Alice Martin <alice@example.com>\nwrote:"
        let previous = lines.get(i.checked_sub(1)?)?;
        if !might_start_attribution(previous.1) {
            return None;
        }
        let joined = format!("{} {line}", previous.1.trim());
        if line.is_empty() || !is_attribution(&joined) || is_attribution(previous.1.trim()) {
            return None;
        }
        previous.0
    };
    // A reply written between quoted lines: the quotation does not end the text.
    (tails.not_interleaved[i + 1] && tails.has_text[i + 1]).then_some(start)
}

/// Whether `line` starts the way an attribution line does (cheap, before [`is_attribution`]).
fn might_start_attribution(line: &str) -> bool {
    let line = line.trim_start_matches('>').trim_start();
    let head: String = line.chars().take(3).collect::<String>().to_lowercase();
    ["on ", "am ", "le "].contains(&head.as_str()) || line.starts_with('在')
}

/// "On … wrote:" and its translations.
fn is_attribution(line: &str) -> bool {
    let line = line.trim_start_matches('>').trim();
    let lower = line.to_lowercase();
    let ends = |suffixes: &[&str]| suffixes.iter().any(|s| lower.ends_with(s));
    (lower.starts_with("on ") && ends(&["wrote:", "wrote :"]))
        || (line.starts_with('在') && ends(&["写道：", "写道:", "寫道：", "寫道:"]))
        || (lower.starts_with("am ") && lower.contains(" schrieb") && ends(&[":"]))
        || (lower.starts_with("le ") && ends(&["a écrit :", "a écrit:"]))
}

/// The first line of a run of `>` lines (and blank lines) that ends the text.
fn trailing_quote_start(lines: &[(usize, &str)]) -> Option<usize> {
    let mut start = None;
    for (at, line) in lines.iter().rev() {
        if is_quoted(line) {
            start = Some(*at);
        } else if !line.trim().is_empty() {
            break;
        }
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote_of(text: &str) -> Option<&str> {
        quotation_start(text).map(|at| &text[at..])
    }

    #[test]
    fn gmail_attribution_and_quoted_lines_end_the_reply() {
        let text = "Sounds good.\n\nOn Mon, 3 Mar 2025 at 09:15, Alice <a@x.com> wrote:\n> Hi\n>\n> Venue booked.";

        assert_eq!(
            quote_of(text),
            Some("On Mon, 3 Mar 2025 at 09:15, Alice <a@x.com> wrote:\n> Hi\n>\n> Venue booked.")
        );
    }

    #[test]
    fn attribution_wrapped_over_two_lines_starts_at_its_first_line() {
        let text = "Yes.\nOn Mon, 3 Mar 2025 at 09:15, Alice Martin\n<alice@example.com> wrote:\n> Venue booked.";

        assert_eq!(
            quote_of(text),
            Some(
                "On Mon, 3 Mar 2025 at 09:15, Alice Martin\n<alice@example.com> wrote:\n> Venue booked."
            )
        );
    }

    #[test]
    fn chinese_attribution_is_recognised() {
        let text = "好的，周五前完成。\n\n在 2025年3月3日 09:15，张伟 <zhang.wei@example.com> 写道：\n> 请审批预算。";

        assert_eq!(
            quote_of(text),
            Some("在 2025年3月3日 09:15，张伟 <zhang.wei@example.com> 写道：\n> 请审批预算。")
        );
    }

    #[test]
    fn outlook_original_message_separator_starts_the_quotation() {
        let text = "Approved.\n\n-----Original Message-----\nFrom: Alice\nSent: Monday\nSubject: Budget\n\nPlease approve.";

        assert_eq!(
            quote_of(text),
            Some(
                "-----Original Message-----\nFrom: Alice\nSent: Monday\nSubject: Budget\n\nPlease approve."
            )
        );
    }

    #[test]
    fn outlook_header_block_starts_at_the_rule_above_it() {
        let text = "Approved.\n\n________________________________\nFrom: Alice Martin\nSent: Monday, 3 March 2025 09:15\nTo: Bob\n\nPlease approve.";

        assert_eq!(
            quote_of(text),
            Some(
                "________________________________\nFrom: Alice Martin\nSent: Monday, 3 March 2025 09:15\nTo: Bob\n\nPlease approve."
            )
        );
    }

    #[test]
    fn chinese_outlook_header_block_is_recognised() {
        let text = "同意。\n\n发件人: 张伟\n发送时间: 2025年3月3日 9:15\n主题: 预算\n\n请审批。";

        assert_eq!(
            quote_of(text),
            Some("发件人: 张伟\n发送时间: 2025年3月3日 9:15\n主题: 预算\n\n请审批。")
        );
    }

    #[test]
    fn a_from_line_without_a_sent_line_is_body_text() {
        let text = "From: the facilities team, with thanks.\n\nSee you there.";

        assert_eq!(quote_of(text), None);
    }

    #[test]
    fn trailing_quoted_lines_without_attribution_are_a_quotation() {
        let text = "Agreed.\n\n> The venue is booked.\n>\n> Alice";

        assert_eq!(quote_of(text), Some("> The venue is booked.\n>\n> Alice"));
    }

    #[test]
    fn interleaved_reply_keeps_the_writers_own_lines() {
        let text = "On Mon, Alice wrote:\n> Is the venue booked?\nYes, since Friday.\n> And the coach?\nNot yet.";

        // Neither the attribution nor a trailing run of quoted lines ends the text.
        assert_eq!(quote_of(text), None);
    }

    #[test]
    fn html_reply_without_quote_marks_is_quoted_from_the_attribution() {
        let text = "Thanks!\n\nOn Mon, 3 Mar 2025, Alice <a@x.com> wrote:\n\nThe venue is booked.";

        assert_eq!(
            quote_of(text),
            Some("On Mon, 3 Mar 2025, Alice <a@x.com> wrote:\n\nThe venue is booked.")
        );
    }

    #[test]
    fn nested_quotation_starts_at_the_outer_attribution() {
        let text = "Fine.\n\nOn Tue, Bob wrote:\n> OK\n> On Mon, Alice wrote:\n>> Booked?";

        assert_eq!(
            quote_of(text),
            Some("On Tue, Bob wrote:\n> OK\n> On Mon, Alice wrote:\n>> Booked?")
        );
    }

    #[test]
    fn text_without_quotation_has_none() {
        assert_eq!(quote_of("Hello.\nOn Monday we meet at 9."), None);
        assert_eq!(quote_of(""), None);
    }
}
