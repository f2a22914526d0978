//! The data vectors of many boxes of compiled objectives with per-box data
//! ([`ExprBuilder::data_input`](super::ExprBuilder::data_input)), stored once.

/// The boxes' data vectors ([`CompiledObjective::box_data`](super::CompiledObjective::box_data)),
/// stored once in one buffer: box `b`'s vector is entry `entry_of[b]`, and boxes with the
/// same data share an entry. Without per-box data every box's vector is empty and nothing
/// is stored per box.
#[derive(Clone, Debug, Default)]
pub struct BoxData {
    /// Box -> entry; empty when every vector is empty.
    entry_of: Vec<u32>,
    /// Where each entry starts in `values`; one more than the entries.
    offsets: Vec<usize>,
    values: Vec<f64>,
}

impl BoxData {
    /// No per-box data: every box's vector is empty.
    pub fn none() -> BoxData {
        BoxData::default()
    }

    /// Appends an entry of `len` zeros and returns its index and its values, to be filled
    /// (by [`CompiledObjective::box_data`](super::CompiledObjective::box_data)).
    pub fn push_entry(&mut self, len: usize) -> (u32, &mut [f64]) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        let start = self.values.len();
        self.values.resize(start + len, 0.0);
        self.offsets.push(self.values.len());
        let index = u32::try_from(self.offsets.len() - 2).expect("fewer than 2^32 entries");
        (index, &mut self.values[start..])
    }

    /// Sets which entry each box reads (every index must come from
    /// [`push_entry`](Self::push_entry)); dropped when every entry is empty.
    pub fn set_entries(&mut self, entry_of: Vec<u32>) {
        assert!(
            entry_of
                .iter()
                .all(|&e| (e as usize) + 1 < self.offsets.len()),
            "a box reads an entry that does not exist"
        );
        if self.values.is_empty() {
            *self = BoxData::none();
        } else {
            self.entry_of = entry_of;
            self.values.shrink_to_fit();
        }
    }

    /// Entry `e`'s values.
    pub fn entry(&self, e: usize) -> &[f64] {
        &self.values[self.offsets[e]..self.offsets[e + 1]]
    }

    /// Box `b`'s data vector (empty without per-box data).
    pub fn of_box(&self, b: usize) -> &[f64] {
        match self.entry_of.get(b) {
            Some(&e) => self.entry(e as usize),
            None => &[],
        }
    }

    /// Box `b`'s entry, when there is per-box data.
    pub fn entry_of(&self, b: usize) -> Option<usize> {
        self.entry_of.get(b).map(|&e| e as usize)
    }

    /// True when no box has per-box data.
    pub fn is_empty(&self) -> bool {
        self.entry_of.is_empty()
    }

    /// The number of numbers stored (every distinct box's data vector, once).
    pub fn stored_len(&self) -> usize {
        self.values.len()
    }
}

#[cfg(test)]
mod tests {
    use super::BoxData;

    #[test]
    fn boxes_share_entries_and_no_data_stores_nothing() {
        let mut data = BoxData::none();
        data.push_entry(2).1.copy_from_slice(&[1.0, 2.0]);
        data.push_entry(1).1[0] = 3.0;
        data.set_entries(vec![0, 1, 0]);
        assert_eq!(data.of_box(2), &[1.0, 2.0]);
        assert_eq!(data.of_box(1), &[3.0]);
        assert_eq!(data.stored_len(), 3);
        let mut empty = BoxData::none();
        let (e, _) = empty.push_entry(0);
        empty.set_entries(vec![e; 5]);
        assert!(empty.is_empty());
        assert_eq!(empty.of_box(4), &[] as &[f64]);
    }
}
