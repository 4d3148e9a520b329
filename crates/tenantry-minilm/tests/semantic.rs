//! The real model, from the files `scripts/setup-minilm.sh` installs (TENANTRY_MINILM_DIR; under
//! CI=true a missing model fails the test): vectors are unit length and 384 wide, the same text
//! gives the same vector, and meaning beats spelling — a paraphrase with no shared content word
//! is closer than an unrelated sentence, which the lexical embedder cannot do.

use std::path::PathBuf;

use tenantry_app::Embedder;
use tenantry_minilm::{DIMENSIONS, MiniLm};

fn model_dir() -> Option<PathBuf> {
    match std::env::var("TENANTRY_MINILM_DIR") {
        Ok(d) if !d.is_empty() => Some(PathBuf::from(d)),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("TENANTRY_MINILM_DIR is not set: scripts/test.sh installs the model with scripts/setup-minilm.sh")
        }
        _ => None,
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meaning_is_closer_than_an_unrelated_sentence() {
    let Some(dir) = model_dir() else { return };
    let model = MiniLm::load(&dir).unwrap();
    let texts = [
        "How do I get my money back for a purchase?",
        "Refund requests for orders are processed within 30 days.",
        "The cafeteria serves lunch at noon on weekdays.",
        "How do I get my money back for a purchase?",
    ];
    let e = model.embed(&texts).await.unwrap();
    assert_eq!(e.len(), 4);
    for v in &e {
        assert_eq!(v.vector.len(), DIMENSIONS);
        let norm: f32 = v.vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "unit length, got {norm}");
    }
    let (related, unrelated) = (cosine(&e[0].vector, &e[1].vector), cosine(&e[0].vector, &e[2].vector));
    assert!(related > unrelated + 0.2, "related {related} vs unrelated {unrelated}");
    assert!(cosine(&e[0].vector, &e[3].vector) > 0.9999, "deterministic");
    assert_eq!(e[0].tokens, 11, "word pieces of the question, without [CLS] and [SEP]");
}

#[test]
fn a_missing_or_altered_model_is_refused_with_a_sentence() {
    let empty = std::env::temp_dir().join(format!("tenantry-minilm-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let e = MiniLm::load(&empty).err().unwrap().to_string();
    assert!(e.contains("is missing") && e.contains("setup-minilm.sh"), "{e}");
    for (name, _) in tenantry_minilm::FILES {
        std::fs::write(empty.join(name), b"{}").unwrap();
    }
    let e = MiniLm::load(&empty).err().unwrap().to_string();
    assert!(e.contains("not the pinned"), "{e}");
    let _ = std::fs::remove_dir_all(&empty);
}
