//! Statuses as the records keep them (see [`super::kept`]): JSON, compressed with lz4 against a dictionary made of the
//! first statuses of the same kind that were kept. The statuses of one kind share their field
//! names, condition types, reasons and message templates, and on one cluster most timestamps'
//! and names' prefixes, so a few of them make a dictionary against which each status takes a
//! fraction of its JSON. The records hold one status per object: at 10,000 accounts that is
//! 160,000 of them, about 100 MiB as plain JSON.

use std::sync::{Mutex, OnceLock};

/// About a dozen statuses of a kind: every condition a kind writes shows up among them.
const DICTIONARY_BYTES: usize = 8 * 1024;

/// A status as kept.
#[derive(Clone)]
pub enum Packed {
    /// Kept before its kind's dictionary existed (it is one of the samples).
    Plain(Box<[u8]>),
    /// lz4 against its kind's dictionary, with the plain length in front.
    Compressed(Box<[u8]>),
}

/// One kind's dictionary: collected from the first statuses, then fixed for the process's life
/// (a compressed status can only be read with the dictionary it was written against).
pub struct Packer {
    samples: Mutex<Vec<u8>>,
    dictionary: OnceLock<Box<[u8]>>,
}

impl Packer {
    pub const fn new() -> Self {
        Self {
            samples: Mutex::new(Vec::new()),
            dictionary: OnceLock::new(),
        }
    }

    pub fn pack(&self, json: Vec<u8>) -> Packed {
        match self.dictionary.get() {
            Some(dictionary) => Packed::Compressed(
                lz4_flex::block::compress_prepend_size_with_dict(&json, dictionary)
                    .into_boxed_slice(),
            ),
            None => {
                self.sample(&json);
                Packed::Plain(json.into_boxed_slice())
            }
        }
    }

    /// The JSON again; `None` if it does not decompress (cannot happen for what `pack` wrote).
    pub fn unpack<'a>(&self, packed: &'a Packed) -> Option<std::borrow::Cow<'a, [u8]>> {
        match packed {
            Packed::Plain(json) => Some(std::borrow::Cow::Borrowed(json)),
            Packed::Compressed(bytes) => {
                let dictionary = self.dictionary.get()?;
                lz4_flex::block::decompress_size_prepended_with_dict(bytes, dictionary)
                    .ok()
                    .map(std::borrow::Cow::Owned)
            }
        }
    }

    fn sample(&self, json: &[u8]) {
        let Ok(mut samples) = self.samples.lock() else {
            return;
        };
        samples.extend_from_slice(json);
        if samples.len() >= DICTIONARY_BYTES {
            let dictionary = std::mem::take(&mut *samples).into_boxed_slice();
            let _ = self.dictionary.set(dictionary);
        }
    }
}

impl Default for Packer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(i: usize) -> Vec<u8> {
        format!(
            r#"{{"conditions":[{{"lastTransitionTime":"2026-12-06T07:10:{:02}Z","message":"the binding grants billing to acct-{i}-m1 on acct-{i}","observedGeneration":1,"reason":"Accepted","status":"True","type":"Accepted"}},{{"lastTransitionTime":"2026-12-06T07:10:{:02}Z","message":"in effect","observedGeneration":1,"reason":"Ready","status":"True","type":"Ready"}}],"observedGeneration":1}}"#,
            i % 60,
            i % 60
        )
        .into_bytes()
    }

    #[test]
    fn statuses_come_back_as_they_went_in_before_and_after_the_dictionary() {
        let packer = Packer::new();
        let packed: Vec<(Vec<u8>, Packed)> = (0..100)
            .map(|i| (status(i), packer.pack(status(i))))
            .collect();
        assert!(matches!(packed[0].1, Packed::Plain(_)));
        assert!(matches!(packed[99].1, Packed::Compressed(_)));
        for (json, kept) in &packed {
            assert_eq!(packer.unpack(kept).as_deref(), Some(json.as_slice()));
        }
        let (json, Packed::Compressed(kept)) = &packed[99] else {
            panic!("compressed")
        };
        assert!(
            kept.len() * 3 < json.len(),
            "{} bytes kept for {}",
            kept.len(),
            json.len()
        );
    }

    #[test]
    fn a_compressed_status_without_its_dictionary_or_damaged_is_none() {
        let (with, without) = (Packer::new(), Packer::new());
        (0..100).for_each(|i| drop(with.pack(status(i))));
        let kept = with.pack(status(7));
        assert!(without.unpack(&kept).is_none());
        let Packed::Compressed(bytes) = kept else {
            panic!("compressed")
        };
        let damaged = Packed::Compressed(bytes[..bytes.len() / 2].into());
        assert!(with.unpack(&damaged).is_none());
    }
}
