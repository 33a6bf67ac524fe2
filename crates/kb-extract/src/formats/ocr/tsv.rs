//! Tesseract's TSV output → the text and mean word confidence of each page.
//!
//! Each TSV row is one element of the layout (page, block, paragraph, line, word) with its
//! page, block, paragraph and line numbers; word rows (level 5) carry the text and a
//! confidence from 0 to 100. Words are joined by spaces into lines, lines by line breaks into
//! paragraphs, and paragraphs (a new block or paragraph number) are separated by a blank line.
//! Tesseract puts a space between every two Chinese (and Japanese) characters it reads; those
//! spaces are removed, since these scripts do not separate words.

use serde::{Deserialize, Serialize};

/// What OCR read on one page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct OcrPage {
    /// The page number, from 1 (for a multi-page TIFF, as Tesseract counts them).
    pub(crate) number: u32,
    /// Mean confidence of the page's words, 0–100 (0 when there are none).
    pub(crate) confidence: f32,
    /// The paragraphs, separated by a blank line; lines within one by a line break.
    pub(crate) text: String,
}

/// The pages of a TSV document, in order. Rows that are not words are only used for their
/// page number; malformed rows are ignored (Tesseract writes none, but the output is read
/// defensively).
pub(crate) fn parse(tsv: &str) -> Vec<OcrPage> {
    let mut pages: Vec<PageBuilder> = Vec::new();
    for row in tsv.lines() {
        let cols: Vec<&str> = row.split('\t').collect();
        if cols.len() < 11 {
            continue;
        }
        let (Ok(level), Ok(page)) = (cols[0].parse::<u8>(), cols[1].parse::<u32>()) else {
            continue; // the header row
        };
        if pages.last().is_none_or(|p| p.number != page) {
            pages.push(PageBuilder::new(page));
        }
        if level != 5 {
            continue;
        }
        let text = cols.get(11).map_or("", |t| t.trim());
        let Ok(confidence) = cols[10].parse::<f32>() else {
            continue;
        };
        if text.is_empty() || !(0.0..=100.0).contains(&confidence) {
            continue;
        }
        let place = (
            cols[2].parse().unwrap_or(0),
            cols[3].parse().unwrap_or(0),
            cols[4].parse().unwrap_or(0),
        );
        let page = pages.last_mut().expect("BUG: a page was pushed above");
        page.word(place, text, confidence);
    }
    pages.into_iter().map(PageBuilder::finish).collect()
}

struct PageBuilder {
    number: u32,
    text: String,
    /// (block, paragraph, line) of the last word written.
    at: Option<(u32, u32, u32)>,
    confidence_sum: f64,
    words: u32,
}

impl PageBuilder {
    fn new(number: u32) -> Self {
        Self {
            number,
            text: String::new(),
            at: None,
            confidence_sum: 0.0,
            words: 0,
        }
    }

    fn word(&mut self, place: (u32, u32, u32), text: &str, confidence: f32) {
        match self.at {
            None => {}
            Some((block, par, _)) if (block, par) != (place.0, place.1) => {
                self.text.push_str("\n\n");
            }
            Some(last) if last != place => self.text.push('\n'),
            Some(_) => self.text.push(' '),
        }
        self.at = Some(place);
        self.text.push_str(text);
        self.confidence_sum += f64::from(confidence);
        self.words += 1;
    }

    fn finish(self) -> OcrPage {
        let confidence = if self.words == 0 {
            0.0
        } else {
            (self.confidence_sum / f64::from(self.words)) as f32
        };
        OcrPage {
            number: self.number,
            confidence,
            text: join_cjk(&self.text),
        }
    }
}

/// Removes the spaces between two characters of scripts written without spaces (Chinese,
/// Japanese kana, and their punctuation and full-width forms). Korean separates words with
/// spaces, so Hangul is left alone.
pub(crate) fn join_cjk(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == ' ' {
            let end = chars[i..]
                .iter()
                .position(|&c| c != ' ')
                .map_or(chars.len(), |n| i + n);
            let joins =
                i > 0 && end < chars.len() && unspaced(chars[i - 1]) && unspaced(chars[end]);
            if !joins {
                out.extend(&chars[i..end]);
            }
            i = end;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

fn unspaced(c: char) -> bool {
    matches!(c as u32,
        0x3000..=0x303f   // CJK symbols and punctuation (、。「」)
        | 0x3040..=0x30ff // Hiragana, Katakana
        | 0x3400..=0x4dbf // CJK extension A
        | 0x4e00..=0x9fff // CJK unified ideographs
        | 0xf900..=0xfaff // CJK compatibility ideographs
        | 0xff00..=0xffef // full-width forms (，：！)
        | 0x20000..=0x3134f // CJK extensions B–G
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext";

    fn word(page: u32, block: u32, par: u32, line: u32, conf: f32, text: &str) -> String {
        format!("5\t{page}\t{block}\t{par}\t{line}\t1\t0\t0\t10\t10\t{conf}\t{text}")
    }

    #[test]
    fn words_lines_and_paragraphs_are_rebuilt_with_their_mean_confidence() {
        let tsv = [
            HEADER.to_owned(),
            "1\t1\t0\t0\t0\t0\t0\t0\t100\t100\t-1\t".to_owned(),
            word(1, 1, 1, 1, 90.0, "Annual"),
            word(1, 1, 1, 1, 80.0, "Leave"),
            word(1, 2, 1, 1, 95.0, "25"),
            word(1, 2, 1, 1, 95.0, "days"),
            word(1, 2, 1, 2, 100.0, "a"),
            word(1, 2, 1, 2, 40.0, "   "),
        ]
        .join("\n");

        let pages = parse(&tsv);

        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].text, "Annual Leave\n\n25 days\na");
        assert_eq!(pages[0].confidence, 92.0);
    }

    #[test]
    fn each_page_of_a_multi_page_image_is_its_own_and_empty_pages_are_kept_empty() {
        let tsv = [
            HEADER.to_owned(),
            "1\t1\t0\t0\t0\t0\t0\t0\t100\t100\t-1\t".to_owned(),
            "1\t2\t0\t0\t0\t0\t0\t0\t100\t100\t-1\t".to_owned(),
            word(2, 1, 1, 1, 70.0, "Delivery"),
        ]
        .join("\n");

        let pages = parse(&tsv);

        assert_eq!(pages.len(), 2);
        assert_eq!((pages[0].number, pages[0].text.as_str()), (1, ""));
        assert_eq!(pages[0].confidence, 0.0);
        assert_eq!((pages[1].number, pages[1].text.as_str()), (2, "Delivery"));
    }

    #[test]
    fn spaces_between_chinese_characters_are_removed_and_others_kept() {
        assert_eq!(
            join_cjk("全 职员 工 每 年 享有 二 十 五 天 。"),
            "全职员工每年享有二十五天。"
        );
        assert_eq!(join_cjk("年 假 25 天 , OK"), "年假 25 天 , OK");
        assert_eq!(join_cjk("须 在 ， 次年"), "须在，次年");
        assert_eq!(join_cjk("회의 자료"), "회의 자료");
        assert_eq!(join_cjk(" 年  假 "), " 年假 ");
    }

    #[test]
    fn garbage_rows_are_ignored() {
        let tsv = "5\tx\n5\t1\t1\t1\t1\t1\t0\t0\t1\t1\tNaN\tword\n5\t1\t1\t1\t1\t1\t0\t0\t1\t1\t200\tword\n";

        let pages = parse(tsv);

        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].text, "");
    }
}
