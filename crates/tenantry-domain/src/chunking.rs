//! Splitting a document's text into overlapping chunks of words, for embedding and retrieval.
//!
//! A chunk is a run of at most `size` whitespace-separated words; consecutive chunks share exactly
//! `overlap` words, so a sentence cut at a boundary is still whole in one of them. Chunks are
//! slices of the original text (byte offsets kept), so nothing is normalized away.

/// How to chunk. Invariant (checked by [`ChunkConfig::new`]): `1 ≤ size ≤ 4096`,
/// `overlap < size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkConfig {
    size: usize,
    overlap: usize,
}

impl ChunkConfig {
    pub const MAX_SIZE: usize = 4096;

    pub fn new(size: usize, overlap: usize) -> Result<Self, crate::Invalid> {
        if size == 0 || size > Self::MAX_SIZE {
            return Err(crate::Invalid::from(format!(
                "chunk size must be between 1 and {} words, got {size}",
                Self::MAX_SIZE
            )));
        }
        if overlap >= size {
            return Err(crate::Invalid::from(format!(
                "chunk overlap ({overlap}) must be smaller than the chunk size ({size})"
            )));
        }
        Ok(Self { size, overlap })
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn overlap(&self) -> usize {
        self.overlap
    }
}

impl Default for ChunkConfig {
    /// 200 words with 40 of overlap: a few paragraphs, well under embedding models' input limits.
    fn default() -> Self {
        Self { size: 200, overlap: 40 }
    }
}

/// One chunk: its position in the document and its text, a slice `start..end` of the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk<'a> {
    pub index: usize,
    pub text: &'a str,
    pub start: usize,
    pub end: usize,
}

/// Chunks `text`. Text with no words gives no chunks.
pub fn chunk(text: &str, config: ChunkConfig) -> Vec<Chunk<'_>> {
    let words = word_spans(text);
    let step = config.size - config.overlap;
    let mut chunks = Vec::new();
    let mut first = 0;
    while first < words.len() {
        let last = (first + config.size).min(words.len()) - 1;
        let (start, end) = (words[first].0, words[last].1);
        chunks.push(Chunk { index: chunks.len(), text: &text[start..end], start, end });
        if last + 1 == words.len() {
            break;
        }
        first += step;
    }
    chunks
}

/// Byte ranges of the whitespace-separated words of `text`.
fn word_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, text.len()));
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn words(s: &str) -> Vec<&str> {
        s.split_whitespace().collect()
    }

    #[test]
    fn refuses_bad_configs() {
        assert!(ChunkConfig::new(0, 0).is_err());
        assert!(ChunkConfig::new(10, 10).is_err());
        assert!(ChunkConfig::new(ChunkConfig::MAX_SIZE + 1, 0).is_err());
        assert!(ChunkConfig::new(1, 0).is_ok());
    }

    #[test]
    fn a_small_example() {
        let text = "one two  three\nfour five six seven";
        let got: Vec<&str> = chunk(text, ChunkConfig::new(3, 1).unwrap()).iter().map(|c| c.text).collect();
        assert_eq!(got, ["one two  three", "three\nfour five", "five six seven"]);
        assert!(chunk(" \n\t ", ChunkConfig::default()).is_empty());
        assert_eq!(chunk("solo", ChunkConfig::default()).len(), 1);
    }

    proptest! {
        #[test]
        fn chunks_cover_every_word_in_order_with_exact_overlap(
            text in "([a-zé0-9]{1,8}[ \n\t]{1,3}){0,120}",
            size in 1usize..40,
            overlap_seed in 0usize..40,
        ) {
            let config = ChunkConfig::new(size, overlap_seed % size).unwrap();
            let all = words(&text);
            let chunks = chunk(&text, config);
            prop_assert_eq!(chunks.is_empty(), all.is_empty());
            let mut next_word = 0;
            for (i, c) in chunks.iter().enumerate() {
                prop_assert_eq!(c.index, i);
                prop_assert_eq!(&text[c.start..c.end], c.text);
                let w = words(c.text);
                prop_assert!(!w.is_empty() && w.len() <= size);
                // each chunk starts `overlap` words before where the previous one ended
                let first = if i == 0 { 0 } else { next_word - config.overlap() };
                prop_assert_eq!(&w[..], &all[first..first + w.len()]);
                next_word = first + w.len();
            }
            prop_assert_eq!(next_word, all.len(), "the last chunk ends at the last word");
        }
    }
}
