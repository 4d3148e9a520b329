//! The built-in, offline embedding: signed feature hashing of lowercase words and of character
//! trigrams within words, L2-normalized.
//!
//! It is deterministic and needs no model or network. It captures *lexical* overlap (shared words,
//! shared word pieces, so "invoice" ≈ "invoices"), not meaning: "car" and "automobile" are
//! unrelated to it. Good enough to test retrieval and isolation end to end and for keyword-like
//! search; a real model is configured through the HTTP embedding provider.

/// Dimensions of the local embedding unless configured otherwise.
pub const DEFAULT_DIMENSIONS: usize = 384;

const WORD_WEIGHT: f32 = 1.0;
const TRIGRAM_WEIGHT: f32 = 0.5;

/// Embeds `text` into `dimensions` (≥ 1) floats with unit L2 norm, or all zeros when the text
/// has no word characters.
pub fn local_embedding(text: &str, dimensions: usize) -> Vec<f32> {
    let dimensions = dimensions.max(1);
    let mut v = vec![0.0f32; dimensions];
    let mut add = |feature: &[u8], weight: f32| {
        let h = fnv1a(feature);
        let sign = if h >> 63 == 1 { -1.0 } else { 1.0 };
        v[(h % dimensions as u64) as usize] += sign * weight;
    };
    let lower = text.to_lowercase();
    for word in lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let mut feature = Vec::with_capacity(word.len() + 2);
        feature.extend_from_slice(b"w:");
        feature.extend_from_slice(word.as_bytes());
        add(&feature, WORD_WEIGHT);
        let chars: Vec<char> = std::iter::once('^').chain(word.chars()).chain(std::iter::once('$')).collect();
        for gram in chars.windows(3) {
            let mut feature = String::with_capacity(14);
            feature.push_str("c:");
            feature.extend(gram);
            add(feature.as_bytes(), TRIGRAM_WEIGHT);
        }
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// Cosine similarity of two vectors of equal length (0 when either is all zeros).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    cosine_with(a, b.iter().copied())
}

/// `cosine` against a vector given element by element — for a store that keeps vectors encoded
/// and would otherwise decode each into a buffer first.
pub fn cosine_with(a: &[f32], b: impl Iterator<Item = f32>) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 { 0.0 } else { dot / (na.sqrt() * nb.sqrt()) }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lexical_neighbours_score_higher_than_strangers() {
        let e = |t: &str| local_embedding(t, DEFAULT_DIMENSIONS);
        let q = e("quarterly invoice totals for finance");
        let near = e("The finance team reconciles invoices and quarterly totals.");
        let far = e("Legal hold procedures for litigation matters.");
        assert!(cosine(&q, &near) > 0.4, "{}", cosine(&q, &near));
        assert!(cosine(&q, &near) > cosine(&q, &far) + 0.3);
        assert_eq!(e("Finance, INVOICE!"), e("finance invoice"), "case and punctuation do not matter");
    }

    #[test]
    fn empty_text_is_the_zero_vector() {
        let z = local_embedding(" ,.;", 16);
        assert!(z.iter().all(|x| *x == 0.0));
        assert_eq!(cosine(&z, &local_embedding("word", 16)), 0.0);
    }

    proptest! {
        #[test]
        fn unit_norm_deterministic_and_self_similar(text in "\\PC{1,200}", dims in 1usize..512) {
            let a = local_embedding(&text, dims);
            prop_assert_eq!(a.len(), dims);
            prop_assert_eq!(&a, &local_embedding(&text, dims));
            let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
            prop_assert!(norm == 0.0 || (norm - 1.0).abs() < 1e-4, "norm {}", norm);
            if norm > 0.0 {
                prop_assert!((cosine(&a, &a) - 1.0).abs() < 1e-4);
            }
        }
    }
}
