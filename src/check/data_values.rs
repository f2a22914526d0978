//! The numbers of a data item: a view of a range of shared, immutable storage.
//!
//! A csv file is parsed once; every item that reads rows of it (`X[i]`, `X[a..b]`, a family
//! member `csv(..., rows = t..t + 1)`) is a view of the same storage, so a million rows used
//! by a million boxes are stored once.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// Row-major numbers of a data item, shared with every other view of the same storage.
/// Dereferences to the item's own numbers (`&[f64]`).
///
/// ```
/// use catopt::check::program::DataValues;
/// use std::sync::Arc;
/// let all = DataValues::from(Arc::<[f64]>::from(vec![1.0, 2.0, 3.0, 4.0]));
/// let tail = all.view(2..4).unwrap();
/// assert_eq!(&*tail, &[3.0, 4.0]);
/// assert!(tail.shares_storage_with(&all));
/// assert!(all.view(3..5).is_none());
/// ```
#[derive(Clone)]
pub struct DataValues {
    storage: Arc<[f64]>,
    start: usize,
    len: usize,
}

impl DataValues {
    /// The numbers `range` of this view (relative to it), sharing its storage; `None` when
    /// the range is reversed or does not fit.
    pub fn view(&self, range: std::ops::Range<usize>) -> Option<DataValues> {
        if range.start > range.end || range.end > self.len {
            return None;
        }
        Some(DataValues {
            storage: self.storage.clone(),
            start: self.start + range.start,
            len: range.end - range.start,
        })
    }

    /// Whether both views read the same storage.
    pub fn shares_storage_with(&self, other: &DataValues) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    /// The address of the shared storage: equal for views of one storage (for counting
    /// storage once).
    pub fn storage_id(&self) -> usize {
        self.storage.as_ptr() as usize
    }

    /// Numbers in the whole shared storage (what it costs, whatever this view reads).
    pub fn storage_len(&self) -> usize {
        self.storage.len()
    }
}

impl From<Arc<[f64]>> for DataValues {
    fn from(storage: Arc<[f64]>) -> DataValues {
        let len = storage.len();
        DataValues {
            storage,
            start: 0,
            len,
        }
    }
}

impl Deref for DataValues {
    type Target = [f64];

    fn deref(&self) -> &[f64] {
        // The range is checked when the view is made.
        self.storage
            .get(self.start..self.start + self.len)
            .unwrap_or(&[])
    }
}

impl PartialEq for DataValues {
    fn eq(&self, other: &DataValues) -> bool {
        **self == **other
    }
}

impl fmt::Debug for DataValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}
