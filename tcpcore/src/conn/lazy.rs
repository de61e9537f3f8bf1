//! State allocated on first write and freed when its connection goes idle: what only a
//! transfer needs (RACK, PRR and the tail loss probe; receive-buffer auto-tuning) costs an
//! idle connection one pointer instead of its size. Reads of unallocated state see the
//! type's default, shared by every connection, so the code using it does not change.

use core::ops::{Deref, DerefMut};

/// A type whose default value can be shared by reference.
pub(crate) trait SharedDefault: Default + 'static {
    /// The default value, shared by every unallocated [`Lazy`].
    fn shared_default() -> &'static Self;
}

/// A `T` allocated on the first mutable access ([`DerefMut`]); until then it reads as
/// `T::default()`.
#[derive(Default)]
pub(crate) struct Lazy<T>(Option<Box<T>>);

impl<T> Lazy<T> {
    /// Free the value: it reads as the default again.
    pub(crate) fn release(&mut self) {
        self.0 = None;
    }

    /// Whether the value is allocated.
    pub(crate) fn is_allocated(&self) -> bool {
        self.0.is_some()
    }

    /// The value if allocated (no look at the shared default: a branch, not a lazy
    /// static's initialization check, for a test made on every segment).
    pub(crate) fn allocated(&self) -> Option<&T> {
        self.0.as_deref()
    }
}

impl<T: SharedDefault> Deref for Lazy<T> {
    type Target = T;
    fn deref(&self) -> &T {
        match &self.0 {
            Some(b) => b,
            None => T::shared_default(),
        }
    }
}

impl<T: SharedDefault> DerefMut for Lazy<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.get_or_insert_with(Box::default)
    }
}

impl<T: SharedDefault + core::fmt::Debug> core::fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        (**self).fmt(f)
    }
}

/// Implement [`SharedDefault`] for `$t` with a static built on first use.
macro_rules! shared_default {
    ($t:ty) => {
        impl $crate::conn::lazy::SharedDefault for $t {
            fn shared_default() -> &'static Self {
                static DEFAULT: std::sync::LazyLock<$t> = std::sync::LazyLock::new(<$t>::default);
                &DEFAULT
            }
        }
    };
}
pub(crate) use shared_default;
