//! A tokenizer-free token count that errs on the high side.

/// Conservative estimate of the number of tokens of `text` for a remote model whose tokenizer
/// is not available here.
///
/// Meant never to underestimate WordPiece (BERT, MiniLM) or SentencePiece (e5, XLM-R)
/// tokenizers on English and Chinese prose, special tokens excluded, at the price of
/// overestimating ordinary English by roughly 1.5–2×:
/// - each CJK character (and each kana or hangul syllable) is one token, as BERT splits them;
/// - each punctuation mark or symbol is one token (`don't` → `don`, `'`, `t`);
/// - a run of ASCII letters of length n is `ceil(n / 3)` tokens (at least 1); a run containing
///   digits, non-ASCII letters (accents, Cyrillic, ...) or two capitals (acronyms, camelCase)
///   `ceil(n / 2)`: such runs split into more word pieces;
/// - the total is raised by 10% (rounded up) for the rare words that split into more pieces.
pub fn estimate_tokens(text: &str) -> usize {
    let mut total = 0;
    let mut run = Run::default();
    for c in text.chars() {
        if c.is_alphanumeric() && !is_cjk(c) {
            run.push(c);
            continue;
        }
        total += run.take();
        if is_cjk(c) || !c.is_whitespace() {
            total += 1;
        }
    }
    total += run.take();
    total + total.div_ceil(10)
}

#[derive(Default)]
struct Run {
    len: usize,
    digits: bool,
    non_ascii: bool,
    upper: usize,
}

impl Run {
    fn push(&mut self, c: char) {
        self.len += 1;
        self.digits |= c.is_numeric();
        self.non_ascii |= !c.is_ascii();
        self.upper += usize::from(c.is_uppercase());
    }

    fn take(&mut self) -> usize {
        let run = std::mem::take(self);
        match run.len {
            0 => 0,
            n if run.digits || run.non_ascii || run.upper > 1 => n.div_ceil(2),
            n => n.div_ceil(3),
        }
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF       // hiragana, katakana
        | 0x3400..=0x4DBF     // CJK extension A
        | 0x4E00..=0x9FFF     // CJK unified ideographs
        | 0xAC00..=0xD7AF     // hangul syllables
        | 0xF900..=0xFAFF     // CJK compatibility ideographs
        | 0xFF00..=0xFFEF     // full-width forms
        | 0x20000..=0x2FA1F   // CJK extensions B.. and supplement
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: &[&str] = &[
        "Employees are entitled to 25 days of paid annual leave per calendar year.",
        "Reimbursement requests must be submitted within 30 days via https://intranet.example.com/expenses?id=42.",
        "The employee's manager approves overtime; compensation is 1.5x the base hourly rate (see §4.2).",
        "Internationalization, decentralization and counterintuitive acknowledgements: Kowalczyk, Nguyễn, Øresund.",
        "员工每年享有二十五天带薪年假，未使用的假期可以结转到下一年。",
        "请在每月5日前通过OA系统提交报销申请，金额超过10,000元需要部门经理审批。",
        "Remote work: 每周最多两天 remote work，需要 manager 批准 (approval).",
        "SKU-2024-00017, INV#88341, ISO/IEC 27001:2022, PO 4500012345.",
        "Call getEmployeeLeaveBalance(employeeId) or email hr-ops@example.co.uk — “urgent” only!",
        "HRIS/ATS/LMS SSO via SAML2.0 & OIDC; MFA (TOTP, FIDO2) is mandatory for VPN/RDP.",
        "Zürich, São Paulo, Kraków, İstanbul, Ærøskøbing: relocation allowances differ 🙂.",
        "第3.2条：试用期（6个月）内，员工可提前3日通知解除劳动合同；《员工手册》另有规定的除外。",
        "",
    ];

    #[test]
    fn empty_text_has_no_tokens() {
        // Act
        let count = estimate_tokens("   ");

        // Assert
        assert_eq!(count, 0);
    }

    #[test]
    fn each_chinese_character_counts_at_least_one_token() {
        // Arrange
        let text = "员工每年享有年假";

        // Act
        let count = estimate_tokens(text);

        // Assert
        assert!(count >= text.chars().count(), "{count}");
    }

    #[test]
    fn estimate_never_undercounts_the_bert_tokenizer_on_samples() {
        // Arrange: the workspace's MiniLM tokenizer (BERT WordPiece), fetched by
        // scripts/fetch-model.sh (or the copy `KB_TEST_MODEL_DIR` names). Missing, the test is
        // skipped, unless `KB_REQUIRE_MODEL=1` (set by scripts/test.sh) makes that a failure.
        let dir = std::env::var_os("KB_TEST_MODEL_DIR").map_or_else(
            || {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../models/all-MiniLM-L6-v2")
            },
            std::path::PathBuf::from,
        );
        let path = dir.join("tokenizer.json");
        let Ok(mut tokenizer) = tokenizers::Tokenizer::from_file(&path) else {
            let path = path.display();
            assert!(
                std::env::var("KB_REQUIRE_MODEL").as_deref() != Ok("1"),
                "KB_REQUIRE_MODEL=1 but {path} cannot be read: run scripts/fetch-model.sh or set KB_TEST_MODEL_DIR"
            );
            eprintln!("skipped: {path} not found (run scripts/fetch-model.sh)");
            return;
        };
        // The model's tokenizer.json pads to 128 and truncates: count the real tokens.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .expect("truncation can be turned off");

        for text in SAMPLES {
            // Act
            let real = tokenizer
                .encode(*text, false)
                .expect("the tokenizer encodes text")
                .len();
            let estimate = estimate_tokens(text);

            // Assert
            assert!(
                estimate >= real,
                "estimate {estimate} < real {real} for {text:?}"
            );
        }
    }
}
