//! [`PropertyBox`]: a 5.0 property set kept out of line, so that the packets that travel in
//! bulk (PUBLISH and its acknowledgements) stay small when they carry no properties, which is
//! every 3.1.1 packet and most 5.0 ones.
//!
//! A `PublishProperties` takes 160 bytes inline; every queue a PUBLISH passes through would copy
//! them. Behind a `PropertyBox` they take one pointer, and nothing is allocated until a property
//! is set. Reading goes through [`Deref`] (an empty box reads as the empty set), writing through
//! [`DerefMut`] (which allocates the set on first use), so `packet.properties.topic_alias` reads
//! and assigns as it would on the set itself.

use alloc::boxed::Box;
use core::fmt;
use core::ops::{Deref, DerefMut};

/// A property set that a [`PropertyBox`] can hold: one of this crate's `*Properties` structs.
pub trait PropertySet: Default + Clone + PartialEq + 'static + private::Sealed {
    /// The set with no property, shared by every empty box.
    fn empty() -> &'static Self;
    /// Whether no property is set.
    fn is_empty(&self) -> bool;
}

pub(crate) mod private {
    /// Keeps [`super::PropertySet`] to this crate's property sets.
    pub trait Sealed {}
}

/// A 5.0 property set behind a pointer, allocated only when a property is set.
///
/// ```
/// use mqtt_proto::{PublishProperties, PropertyBox};
/// use core::num::NonZeroU16;
///
/// let mut props: PropertyBox<PublishProperties> = PropertyBox::default();
/// assert!(props.is_empty() && !props.is_allocated());
/// props.topic_alias = NonZeroU16::new(3);
/// assert_eq!(props.topic_alias, NonZeroU16::new(3));
/// assert!(props.is_allocated());
/// ```
pub struct PropertyBox<T>(Option<Box<T>>);

impl<T> PropertyBox<T> {
    /// The empty set, without an allocation.
    pub const EMPTY: Self = Self(None);

    /// Whether the set has been allocated (it may still be empty if its properties were
    /// cleared).
    pub fn is_allocated(&self) -> bool {
        self.0.is_some()
    }
}

impl<T: PropertySet> PropertyBox<T> {
    /// Boxes `set`, or allocates nothing when it is empty.
    pub fn new(set: T) -> Self {
        if set.is_empty() {
            Self(None)
        } else {
            Self(Some(Box::new(set)))
        }
    }

    /// Whether no property is set; without looking at the set when none was allocated.
    #[inline]
    pub fn is_empty(&self) -> bool {
        match &self.0 {
            None => true,
            Some(set) => set.is_empty(),
        }
    }

    /// Boxes a set known to hold properties (a non-empty block the decoder read).
    #[inline]
    pub(crate) fn boxed(set: T) -> Self {
        Self(Some(Box::new(set)))
    }

    /// The set, mutable, if it is allocated: changes a set without allocating one that is
    /// empty, e.g. to clear a property that may not be there.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        self.0.as_deref_mut()
    }

    /// The set itself, moved out of its box (the empty set when none was allocated).
    pub fn into_inner(self) -> T {
        match self.0 {
            Some(set) => *set,
            None => T::default(),
        }
    }

    /// Takes the set out, leaving the empty set without an allocation.
    pub fn take(&mut self) -> Self {
        Self(self.0.take())
    }
}

impl<T: PropertySet> Deref for PropertyBox<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        match &self.0 {
            Some(set) => set,
            None => T::empty(),
        }
    }
}

impl<T: PropertySet> DerefMut for PropertyBox<T> {
    /// The set, allocated on first use.
    fn deref_mut(&mut self) -> &mut T {
        self.0.get_or_insert_with(Box::default)
    }
}

impl<T> Default for PropertyBox<T> {
    #[inline]
    fn default() -> Self {
        Self(None)
    }
}

impl<T: Clone> Clone for PropertyBox<T> {
    #[inline]
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

/// Equal when the sets are: an allocated empty set equals no allocation.
impl<T: PropertySet> PartialEq for PropertyBox<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: PropertySet + Eq> Eq for PropertyBox<T> {}

impl<T: PropertySet + fmt::Debug> fmt::Debug for PropertyBox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: PropertySet> From<T> for PropertyBox<T> {
    #[inline]
    fn from(set: T) -> Self {
        Self::new(set)
    }
}

#[cfg(feature = "arbitrary")]
impl<'a, T: PropertySet + arbitrary::Arbitrary<'a>> arbitrary::Arbitrary<'a> for PropertyBox<T> {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self::new(T::arbitrary(u)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AckProperties, MqttString, PublishProperties};
    use core::num::NonZeroU16;

    #[test]
    fn publish_properties_take_one_pointer() {
        assert_eq!(
            core::mem::size_of::<PropertyBox<PublishProperties>>(),
            core::mem::size_of::<usize>()
        );
    }

    #[test]
    fn an_empty_set_allocates_nothing() {
        assert!(!PropertyBox::new(PublishProperties::default()).is_allocated());
        let mut props = PropertyBox::<AckProperties>::default();
        assert!(props.get_mut().is_none());
        assert!(props.reason_string.is_none());
        assert!(!props.is_allocated());
    }

    #[test]
    fn writing_a_property_allocates_and_reads_back() {
        let mut props: PropertyBox<PublishProperties> = PropertyBox::EMPTY;
        props.topic_alias = NonZeroU16::new(7);
        assert!(props.is_allocated());
        assert_eq!(props.topic_alias, NonZeroU16::new(7));
        assert_eq!(props.clone().into_inner().topic_alias, NonZeroU16::new(7));
    }

    #[test]
    fn an_allocated_empty_set_equals_none() {
        let mut cleared: PropertyBox<AckProperties> = PropertyBox::EMPTY;
        cleared.reason_string = MqttString::new("x").ok();
        cleared.reason_string = None;
        assert!(cleared.is_allocated());
        assert_eq!(cleared, PropertyBox::EMPTY);
        assert_eq!(
            alloc::format!("{cleared:?}"),
            alloc::format!("{:?}", AckProperties::default())
        );
    }
}
