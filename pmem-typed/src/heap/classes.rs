//! Size classes and the bitmaps of small chunks.

use crate::format::SIZE_CLASSES;

/// The smallest class whose blocks hold `size` bytes aligned to `align`.
pub(crate) fn class_for(size: usize, align: usize) -> Option<usize> {
    let need = size.max(align).max(1);
    SIZE_CLASSES.iter().position(|&c| c >= need)
}

/// The class whose block size is exactly `size`.
pub(crate) fn class_of_block(size: u64) -> Option<usize> {
    SIZE_CLASSES.iter().position(|&c| c as u64 == size)
}

/// The first block of `blocks` whose bit is clear.
pub(crate) fn first_clear_bit(bitmap: &[u64; 4], blocks: usize) -> Option<usize> {
    bitmap.iter().enumerate().find_map(|(w, &word)| {
        let bit = w * 64 + (!word).trailing_zeros() as usize;
        (word != u64::MAX && bit < blocks).then_some(bit)
    })
}

/// How many bits are set at or past bit `blocks`.
pub(crate) fn bits_beyond(bitmap: &[u64; 4], blocks: usize) -> u32 {
    (0..256)
        .filter(|&b| b >= blocks && bitmap[b / 64] & 1 << (b % 64) != 0)
        .count() as u32
}

/// Whether bit `bit` is set.
pub(crate) fn is_set(bitmap: &[u64; 4], bit: usize) -> bool {
    bitmap[bit / 64] & 1 << (bit % 64) != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::heap::blocks_per_chunk;

    #[test]
    fn classes() {
        assert_eq!(class_for(1, 1), Some(0));
        assert_eq!(class_for(64, 8), Some(0));
        assert_eq!(class_for(65, 8), Some(1));
        assert_eq!(class_for(8, 512), Some(3));
        assert_eq!(class_for(8192, 8), Some(7));
        assert_eq!(class_for(8193, 8), None);
        assert_eq!(blocks_per_chunk(0), 256);
        assert_eq!(blocks_per_chunk(7), 2);
    }

    #[test]
    fn bit_search() {
        let mut bitmap = [u64::MAX, 0b1011, 0, 0];
        assert_eq!(first_clear_bit(&bitmap, 256), Some(66));
        bitmap[1] = u64::MAX;
        assert_eq!(first_clear_bit(&bitmap, 128), None);
        assert_eq!(first_clear_bit(&bitmap, 129), Some(128));
        assert_eq!(bits_beyond(&[0, 0, 1, 0], 128), 1);
        assert!(is_set(&bitmap, 64) && !is_set(&bitmap, 200));
    }
}
