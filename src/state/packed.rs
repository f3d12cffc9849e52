//! Statuses as the records keep them (see [`super::kept`]): JSON, compressed with lz4 against a dictionary made of the
//! first statuses of the same kind that were kept. The statuses of one kind share their field
//! names, condition types, reasons and message templates, and on one cluster most timestamps'
//! and names' prefixes, so a few of them make a dictionary against which each status takes a
//! fraction of its JSON. The records hold one status per object: at 10,000 accounts that is
//! 160,000 of them, about 100 MiB as plain JSON.

use std::sync::{Mutex, OnceLock};

/// About a dozen statuses of a kind: every condition a kind writes shows up among them.
const DICTIONARY_BYTES: usize = 8 * 1024;

/// A status as kept: one box whose first byte says how the rest is kept ([`PLAIN`]: the JSON,
/// kept before its kind's dictionary existed, as one of the samples; [`COMPRESSED`]: lz4 against
/// the kind's dictionary, with the plain length in front). One tagged box is 16 bytes where an
/// enum of two boxes is 24, in a record kept for every object of the cluster.
#[derive(Clone)]
pub struct Packed(Box<[u8]>);

const PLAIN: u8 = 0;
const COMPRESSED: u8 = 1;

impl Packed {
    /// `bytes` behind `tag`, in the vector's own allocation: a compressed block's vector has
    /// room to spare (lz4 reserves its worst case), so the tag costs a shift, not a copy.
    fn tagged(tag: u8, mut bytes: Vec<u8>) -> Self {
        bytes.insert(0, tag);
        Self(bytes.into_boxed_slice())
    }

    fn parts(&self) -> (u8, &[u8]) {
        match self.0.split_first() {
            Some((tag, bytes)) => (*tag, bytes),
            None => (PLAIN, &[]),
        }
    }

    /// Whether it is compressed (its kind had a dictionary when it was kept).
    pub fn is_compressed(&self) -> bool {
        self.parts().0 == COMPRESSED
    }
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
            Some(dictionary) => Packed::tagged(
                COMPRESSED,
                lz4_flex::block::compress_prepend_size_with_dict(&json, dictionary),
            ),
            None => {
                self.sample(&json);
                Packed::tagged(PLAIN, json)
            }
        }
    }

    /// The JSON again; `None` if it does not decompress (cannot happen for what `pack` wrote).
    pub fn unpack<'a>(&self, packed: &'a Packed) -> Option<std::borrow::Cow<'a, [u8]>> {
        match packed.parts() {
            (COMPRESSED, bytes) => {
                let dictionary = self.dictionary.get()?;
                lz4_flex::block::decompress_size_prepended_with_dict(bytes, dictionary)
                    .ok()
                    .map(std::borrow::Cow::Owned)
            }
            (_, json) => Some(std::borrow::Cow::Borrowed(json)),
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
        assert!(!packed[0].1.is_compressed());
        assert!(packed[99].1.is_compressed());
        for (json, kept) in &packed {
            assert_eq!(packer.unpack(kept).as_deref(), Some(json.as_slice()));
        }
        let (json, kept) = &packed[99];
        assert!(
            kept.0.len() * 3 < json.len(),
            "{} bytes kept for {}",
            kept.0.len(),
            json.len()
        );
    }

    #[test]
    fn a_compressed_status_without_its_dictionary_or_damaged_is_none() {
        let (with, without) = (Packer::new(), Packer::new());
        (0..100).for_each(|i| drop(with.pack(status(i))));
        let kept = with.pack(status(7));
        assert!(without.unpack(&kept).is_none());
        let (tag, bytes) = kept.parts();
        assert_eq!(tag, COMPRESSED);
        let damaged = Packed::tagged(COMPRESSED, bytes[..bytes.len() / 2].to_vec());
        assert!(with.unpack(&damaged).is_none());
    }
}
