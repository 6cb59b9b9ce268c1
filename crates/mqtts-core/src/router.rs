//! Routes incoming messages to handlers by topic filter (`+` and `#` wildcards).
//!
//! The handler type is the application's choice: a function pointer, an enum naming the
//! subsystem, an index. Routing happens on borrowed topics, so it costs no copies.

use crate::codec::topic;

/// Why a route could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// The filter is not a valid MQTT topic filter.
    InvalidFilter,
    /// All `N` routes are taken.
    Full,
}

/// Up to `N` (filter, handler) pairs, matched in the order they were added.
#[derive(Debug, Clone)]
pub struct Router<'f, H, const N: usize> {
    routes: heapless::Vec<(&'f str, H), N>,
}

impl<'f, H: Copy, const N: usize> Router<'f, H, N> {
    /// An empty router.
    pub const fn new() -> Self {
        Router {
            routes: heapless::Vec::new(),
        }
    }

    /// Adds a route for `filter`.
    pub fn add(&mut self, filter: &'f str, handler: H) -> Result<(), RouteError> {
        if !topic::valid_topic_filter(filter) {
            return Err(RouteError::InvalidFilter);
        }
        self.routes
            .push((filter, handler))
            .map_err(|_| RouteError::Full)
    }

    /// The handler of the first route whose filter matches `topic`.
    pub fn route(&self, topic: &str) -> Option<H> {
        self.matching(topic).next()
    }

    /// The handlers of every route whose filter matches `topic` (overlapping subscriptions).
    pub fn matching<'s>(&'s self, topic: &'s str) -> impl Iterator<Item = H> + 's {
        self.routes
            .iter()
            .filter(move |(filter, _)| topic::matches(filter, topic))
            .map(|&(_, handler)| handler)
    }

    /// The filters, e.g. to build the SUBSCRIBE.
    pub fn filters(&self) -> impl Iterator<Item = &'f str> + '_ {
        self.routes.iter().map(|&(filter, _)| filter)
    }
}

impl<H: Copy, const N: usize> Default for Router<'_, H, N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum To {
        Set,
        Service,
        All,
    }

    fn router() -> Router<'static, To, 4> {
        let mut r = Router::new();
        r.add("/sys/pk/dn/thing/service/property/set", To::Set)
            .unwrap();
        r.add("/sys/pk/dn/thing/service/+", To::Service).unwrap();
        r.add("/sys/#", To::All).unwrap();
        r
    }

    #[test]
    fn first_match_wins_and_all_matches_are_listed() {
        let r = router();
        assert_eq!(
            r.route("/sys/pk/dn/thing/service/property/set"),
            Some(To::Set)
        );
        assert_eq!(
            r.route("/sys/pk/dn/thing/service/Toggle"),
            Some(To::Service)
        );
        assert_eq!(
            r.matching("/sys/pk/dn/thing/service/Toggle")
                .collect::<Vec<_>>(),
            [To::Service, To::All]
        );
        assert_eq!(
            r.route("/sys/pk/dn/thing/event/property/post_reply"),
            Some(To::All)
        );
        assert_eq!(r.route("devices/x/set"), None);
    }

    #[test]
    fn plus_matches_one_level_only() {
        let r = router();
        assert_eq!(
            r.matching("/sys/pk/dn/thing/service/a/b")
                .collect::<Vec<_>>(),
            [To::All]
        );
    }

    #[test]
    fn bad_filters_and_overflow_are_errors() {
        let mut r = router();
        assert_eq!(r.add("a/#/b", To::All), Err(RouteError::InvalidFilter));
        assert_eq!(r.add("a+", To::All), Err(RouteError::InvalidFilter));
        assert_eq!(r.add("", To::All), Err(RouteError::InvalidFilter));
        r.add("x", To::All).unwrap();
        assert_eq!(r.add("y", To::All), Err(RouteError::Full));
        assert_eq!(r.filters().count(), 4);
    }
}
