//! The seed's benchmark tenants D, E and F with text of their own kind, so retrieval (and the
//! configuration comparison) differs between them by content, not only by size: D's short
//! customer-support tickets, E's long legal documents, F's mid-sized business reports. Sentences
//! come from per-domain templates filled by a deterministic generator: the same seed always gives
//! the same text.

/// One seed tenant: id, name, use case, document count, words per document, and its domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedTenant {
    pub id: &'static str,
    pub name: &'static str,
    pub use_case: &'static str,
    pub documents: usize,
    pub words: usize,
    pub domain: Domain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    Support,
    Legal,
    Business,
}

/// Seed 000's table.
pub const SEED_TENANTS: [SeedTenant; 3] = [
    SeedTenant {
        id: "tenant_d",
        name: "Customer Support Co",
        use_case: "High-volume customer support",
        documents: 1000,
        words: 150,
        domain: Domain::Support,
    },
    SeedTenant {
        id: "tenant_e",
        name: "Legal Research LLC",
        use_case: "Legal documents and case law",
        documents: 50,
        words: 5200,
        domain: Domain::Legal,
    },
    SeedTenant {
        id: "tenant_f",
        name: "Business Docs Inc",
        use_case: "General business documentation",
        documents: 200,
        words: 800,
        domain: Domain::Business,
    },
];

/// A question each seed tenant's documents can answer (for `compare-tenants` and tests).
pub fn sample_question(domain: Domain) -> &'static str {
    match domain {
        Domain::Support => "How do I reset my password when the reset email never arrives?",
        Domain::Legal => "What notice period applies to termination for convenience?",
        Domain::Business => "Why did operating margin change in the third quarter?",
    }
}

struct Vocabulary {
    templates: &'static [&'static str],
    /// `{a}`, `{b}`, `{c}`, `{d}` fill from these lists; `{n}` is a number.
    a: &'static [&'static str],
    b: &'static [&'static str],
    c: &'static [&'static str],
    d: &'static [&'static str],
    titles: &'static [&'static str],
}

const SUPPORT: Vocabulary = Vocabulary {
    templates: &[
        "Ticket {n}: the customer cannot {a} because {b}.",
        "Resolution: ask the customer to {c}, then {d}.",
        "If the problem continues, escalate to tier two with the account id and browser version.",
        "Known issue: {b} affects customers on the mobile app since release {n}.",
        "Workaround: {c} and confirm the customer can {a} again.",
        "The agent verified the customer's identity before changing account settings.",
    ],
    a: &[
        "reset the password",
        "log in",
        "download the invoice",
        "update the card",
        "export reports",
        "invite teammates",
        "cancel the subscription",
        "change the email address",
    ],
    b: &[
        "the reset email never arrives",
        "the session expires immediately",
        "the payment is declined",
        "two-factor codes are rejected",
        "the page shows a blank screen",
        "the spam filter blocks our domain",
    ],
    c: &[
        "clear the browser cache",
        "check the spam folder",
        "whitelist no-reply@example.com",
        "resend the verification link",
        "sign out of every device",
        "retry with a private window",
    ],
    d: &[
        "close the ticket after 48 hours without reply",
        "tag the ticket as resolved",
        "offer a one-month credit",
        "note the fix in the knowledge base",
    ],
    titles: &[
        "Password reset",
        "Login failure",
        "Billing question",
        "Mobile app bug",
        "Account settings",
        "Subscription change",
    ],
};

const LEGAL: Vocabulary = Vocabulary {
    templates: &[
        "Section {n}. The {a} shall {b} within {n} days of {c}.",
        "Either party may terminate this agreement for convenience upon ninety days written notice to the other party.",
        "Notwithstanding the foregoing, the {a} remains liable for {d} arising before termination.",
        "The court held that {c} does not by itself constitute {d}, citing precedent from the appellate division.",
        "Any amendment requires a written instrument signed by authorised representatives of both parties.",
        "The {a} represents and warrants that it has full authority to {b}.",
        "Confidential information excludes information that becomes public through no breach by the receiving party.",
        "This agreement is governed by the laws of the State of Delaware, without regard to conflict of law principles.",
    ],
    a: &["licensee", "licensor", "supplier", "purchaser", "indemnifying party", "receiving party", "contractor"],
    b: &[
        "deliver written notice",
        "cure the material breach",
        "return all confidential information",
        "pay the outstanding fees",
        "provide audit records",
        "obtain the required consents",
    ],
    c: &[
        "the effective date",
        "receipt of the invoice",
        "a change of control",
        "the discovery of the breach",
        "termination for cause",
        "the expiry of the initial term",
    ],
    d: &[
        "consequential damages",
        "a material breach",
        "wilful misconduct",
        "indemnification obligations",
        "gross negligence",
        "a waiver of rights",
    ],
    titles: &[
        "Master services agreement",
        "License agreement",
        "Case summary",
        "Non-disclosure agreement",
        "Supply contract",
    ],
};

const BUSINESS: Vocabulary = Vocabulary {
    templates: &[
        "In the third quarter, {a} {b} by {n} percent as {c}.",
        "Operating margin changed because {c}, partly offset by {d}.",
        "The {a} team plans to {d} before the next planning cycle.",
        "Headcount in {a} stayed flat while revenue per employee rose {n} percent.",
        "The board approved the budget for {a} with a contingency of {n} percent.",
        "Key risks include supplier concentration and currency exposure in European markets.",
    ],
    a: &["sales", "marketing", "operations", "finance", "customer success", "procurement", "engineering"],
    b: &["increased", "decreased", "held steady", "improved", "declined"],
    c: &[
        "freight costs fell",
        "the pricing change took effect",
        "two large renewals closed",
        "discounting increased",
        "cloud spend was renegotiated",
        "seasonal demand peaked",
    ],
    d: &[
        "consolidate vendors",
        "automate invoice matching",
        "reduce discount approvals",
        "expand the partner channel",
        "renegotiate the office lease",
        "hire two analysts",
    ],
    titles: &[
        "Quarterly business review",
        "Operating plan",
        "Board memo",
        "Department budget",
        "Vendor review",
        "Pricing update",
    ],
};

fn vocabulary(domain: Domain) -> &'static Vocabulary {
    match domain {
        Domain::Support => &SUPPORT,
        Domain::Legal => &LEGAL,
        Domain::Business => &BUSINESS,
    }
}

/// A small deterministic generator (SplitMix64).
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

/// Document `index` of a tenant of `domain`: its title and about `words` words of text.
pub fn document(domain: Domain, index: u64, words: usize) -> (String, String) {
    let v = vocabulary(domain);
    let mut rng = Mix(index.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ domain as u64);
    let title = format!("{} {}", rng.pick(v.titles), index + 1);
    let mut text = String::new();
    let mut count = 0;
    while count < words {
        let template = rng.pick(v.templates);
        let mut sentence = template.to_owned();
        for (slot, list) in [("{a}", v.a), ("{b}", v.b), ("{c}", v.c), ("{d}", v.d)] {
            while sentence.contains(slot) {
                sentence = sentence.replacen(slot, rng.pick(list), 1);
            }
        }
        while sentence.contains("{n}") {
            sentence = sentence.replacen("{n}", &(2 + rng.next() % 97).to_string(), 1);
        }
        count += sentence.split_whitespace().count();
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&sentence);
    }
    (title, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_deterministic_sized_and_of_their_domain() {
        assert_eq!(document(Domain::Legal, 3, 500), document(Domain::Legal, 3, 500));
        assert_ne!(document(Domain::Legal, 3, 500), document(Domain::Legal, 4, 500));
        for t in SEED_TENANTS {
            let (_, text) = document(t.domain, 1, t.words);
            let n = text.split_whitespace().count();
            assert!(n >= t.words && n < t.words + 40, "{}: {n} words", t.id);
        }
        assert!(document(Domain::Support, 1, 300).1.contains("customer"));
        assert!(
            document(Domain::Legal, 1, 300).1.contains("party")
                || document(Domain::Legal, 1, 300).1.contains("agreement")
        );
        assert!(!document(Domain::Business, 1, 300).1.contains("Ticket"));
    }
}
