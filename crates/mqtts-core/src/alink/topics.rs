//! Topics of one Alink device.
//!
//! | purpose | topic | direction |
//! |---|---|---|
//! | property post | `/sys/{pk}/{dn}/thing/event/property/post` | up |
//! | property post reply | `/sys/{pk}/{dn}/thing/event/property/post_reply` | down |
//! | property set | `/sys/{pk}/{dn}/thing/service/property/set` | down |
//! | property set reply | `/sys/{pk}/{dn}/thing/service/property/set_reply` | up |
//! | service call | `/sys/{pk}/{dn}/thing/service/{identifier}` | down |
//! | service reply | `/sys/{pk}/{dn}/thing/service/{identifier}_reply` | up |
//! | event post | `/sys/{pk}/{dn}/thing/event/{identifier}/post` | up |
//! | NTP request | `/ext/ntp/{pk}/{dn}/request` | up |
//! | NTP response | `/ext/ntp/{pk}/{dn}/response` | down |

/// Capacity of a topic string; enough for the longest topic with a 32-character product key and
/// device name and a 50-character identifier.
pub const TOPIC_CAPACITY: usize = 160;

/// A topic string.
pub type Topic = heapless::String<TOPIC_CAPACITY>;

/// Longest product key or device name accepted.
pub const MAX_KEY_LEN: usize = 32;

/// A product key, device name or identifier cannot be used in a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicError {
    /// The product key is empty, longer than [`MAX_KEY_LEN`] or has characters outside
    /// `[A-Za-z0-9_.:@-]`.
    InvalidProductKey,
    /// The device name is empty, longer than [`MAX_KEY_LEN`] or has characters outside
    /// `[A-Za-z0-9_.:@-]`.
    InvalidDeviceName,
    /// The identifier is not 1..=50 chars of `[A-Za-z0-9_]`.
    InvalidIdentifier,
}

/// What an inbound topic is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound<'t> {
    /// `…/thing/service/property/set`.
    PropertySet,
    /// `…/thing/event/property/post_reply`.
    PropertyPostReply,
    /// `…/thing/service/{identifier}` (a service call).
    Service(&'t str),
    /// `/ext/ntp/{pk}/{dn}/response`.
    NtpResponse,
    /// Not a topic this device handles.
    Other,
}

/// The topics of the device `{pk}/{dn}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThingTopics<'a> {
    product_key: &'a str,
    device_name: &'a str,
}

fn is_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_KEY_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'@'))
}

fn join(parts: &[&str]) -> Topic {
    let mut t = Topic::new();
    for part in parts {
        // Cannot fail: the lengths of all parts are bounded (see TOPIC_CAPACITY).
        if t.push_str(part).is_err() {
            break;
        }
    }
    t
}

impl<'a> ThingTopics<'a> {
    /// Topics for product key `pk` and device name `dn`.
    pub fn new(product_key: &'a str, device_name: &'a str) -> Result<Self, TopicError> {
        if !is_key(product_key) {
            return Err(TopicError::InvalidProductKey);
        }
        if !is_key(device_name) {
            return Err(TopicError::InvalidDeviceName);
        }
        Ok(ThingTopics {
            product_key,
            device_name,
        })
    }

    fn sys(&self, tail: &[&str]) -> Topic {
        let mut parts: heapless::Vec<&str, 8> = heapless::Vec::new();
        for p in ["/sys/", self.product_key, "/", self.device_name, "/thing/"]
            .iter()
            .chain(tail.iter())
        {
            if parts.push(p).is_err() {
                break;
            }
        }
        join(&parts)
    }

    fn check(identifier: &str) -> Result<(), TopicError> {
        if crate::switch::is_identifier(identifier) {
            Ok(())
        } else {
            Err(TopicError::InvalidIdentifier)
        }
    }

    /// `/sys/{pk}/{dn}/thing/event/property/post`.
    pub fn property_post(&self) -> Topic {
        self.sys(&["event/property/post"])
    }

    /// `/sys/{pk}/{dn}/thing/event/property/post_reply`.
    pub fn property_post_reply(&self) -> Topic {
        self.sys(&["event/property/post_reply"])
    }

    /// `/sys/{pk}/{dn}/thing/service/property/set`.
    pub fn property_set(&self) -> Topic {
        self.sys(&["service/property/set"])
    }

    /// `/sys/{pk}/{dn}/thing/service/property/set_reply`.
    pub fn property_set_reply(&self) -> Topic {
        self.sys(&["service/property/set_reply"])
    }

    /// `/sys/{pk}/{dn}/thing/service/+`: all service calls.
    pub fn service_wildcard(&self) -> Topic {
        self.sys(&["service/+"])
    }

    /// `/sys/{pk}/{dn}/thing/service/{identifier}`.
    pub fn service(&self, identifier: &str) -> Result<Topic, TopicError> {
        Self::check(identifier)?;
        Ok(self.sys(&["service/", identifier]))
    }

    /// `/sys/{pk}/{dn}/thing/service/{identifier}_reply`.
    pub fn service_reply(&self, identifier: &str) -> Result<Topic, TopicError> {
        Self::check(identifier)?;
        Ok(self.sys(&["service/", identifier, "_reply"]))
    }

    /// `/sys/{pk}/{dn}/thing/event/{identifier}/post`.
    pub fn event_post(&self, identifier: &str) -> Result<Topic, TopicError> {
        Self::check(identifier)?;
        Ok(self.sys(&["event/", identifier, "/post"]))
    }

    /// `/ext/ntp/{pk}/{dn}/request`.
    pub fn ntp_request(&self) -> Topic {
        join(&[
            "/ext/ntp/",
            self.product_key,
            "/",
            self.device_name,
            "/request",
        ])
    }

    /// `/ext/ntp/{pk}/{dn}/response`.
    pub fn ntp_response(&self) -> Topic {
        join(&[
            "/ext/ntp/",
            self.product_key,
            "/",
            self.device_name,
            "/response",
        ])
    }

    /// What a connected device subscribes to: property set, all services, property post reply,
    /// NTP response (all at QoS 0 or 1; see [`super::MAX_QOS`]).
    pub fn subscriptions(&self) -> [Topic; 4] {
        [
            self.property_set(),
            self.service_wildcard(),
            self.property_post_reply(),
            self.ntp_response(),
        ]
    }

    /// What an inbound PUBLISH on `topic` is for.
    pub fn classify<'t>(&self, topic: &'t str) -> Inbound<'t> {
        if let Some(rest) = strip_device(topic, "/sys/", self.product_key, self.device_name) {
            return match rest {
                "/thing/service/property/set" => Inbound::PropertySet,
                "/thing/event/property/post_reply" => Inbound::PropertyPostReply,
                _ => match rest.strip_prefix("/thing/service/") {
                    Some(id) if crate::switch::is_identifier(id) && !id.ends_with("_reply") => {
                        Inbound::Service(id)
                    }
                    _ => Inbound::Other,
                },
            };
        }
        match strip_device(topic, "/ext/ntp/", self.product_key, self.device_name) {
            Some("/response") => Inbound::NtpResponse,
            _ => Inbound::Other,
        }
    }
}

/// `topic` without `{prefix}{pk}/{dn}`, if it starts with that.
fn strip_device<'t>(topic: &'t str, prefix: &str, pk: &str, dn: &str) -> Option<&'t str> {
    topic
        .strip_prefix(prefix)?
        .strip_prefix(pk)?
        .strip_prefix('/')?
        .strip_prefix(dn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics() {
        let t = ThingTopics::new("a1B2c3", "dev-01").unwrap();
        assert_eq!(
            t.property_post(),
            "/sys/a1B2c3/dev-01/thing/event/property/post"
        );
        assert_eq!(
            t.property_post_reply(),
            "/sys/a1B2c3/dev-01/thing/event/property/post_reply"
        );
        assert_eq!(
            t.property_set(),
            "/sys/a1B2c3/dev-01/thing/service/property/set"
        );
        assert_eq!(
            t.property_set_reply(),
            "/sys/a1B2c3/dev-01/thing/service/property/set_reply"
        );
        assert_eq!(t.service_wildcard(), "/sys/a1B2c3/dev-01/thing/service/+");
        assert_eq!(
            t.service("Toggle").unwrap(),
            "/sys/a1B2c3/dev-01/thing/service/Toggle"
        );
        assert_eq!(
            t.service_reply("Toggle").unwrap(),
            "/sys/a1B2c3/dev-01/thing/service/Toggle_reply"
        );
        assert_eq!(
            t.event_post("Fault").unwrap(),
            "/sys/a1B2c3/dev-01/thing/event/Fault/post"
        );
        assert_eq!(t.ntp_request(), "/ext/ntp/a1B2c3/dev-01/request");
        assert_eq!(t.ntp_response(), "/ext/ntp/a1B2c3/dev-01/response");
        assert_eq!(t.event_post("a/b"), Err(TopicError::InvalidIdentifier));
        assert_eq!(t.service("+"), Err(TopicError::InvalidIdentifier));
        let subs = t.subscriptions();
        assert_eq!(subs[1], "/sys/a1B2c3/dev-01/thing/service/+");
    }

    #[test]
    fn rejects_bad_keys() {
        assert_eq!(
            ThingTopics::new("", "d").err(),
            Some(TopicError::InvalidProductKey)
        );
        assert_eq!(
            ThingTopics::new("p/x", "d").err(),
            Some(TopicError::InvalidProductKey)
        );
        assert_eq!(
            ThingTopics::new("p", "d+").err(),
            Some(TopicError::InvalidDeviceName)
        );
        assert_eq!(
            ThingTopics::new("p", &"d".repeat(33)).err(),
            Some(TopicError::InvalidDeviceName)
        );
    }

    #[test]
    fn longest_topic_fits() {
        let pk = "p".repeat(32);
        let dn = "d".repeat(32);
        let id = "i".repeat(50);
        let t = ThingTopics::new(&pk, &dn).unwrap();
        let reply = t.service_reply(&id).unwrap();
        assert!(reply.ends_with("_reply"));
        assert_eq!(reply.len(), 5 + 32 + 1 + 32 + 15 + 50 + 6);
    }

    #[test]
    fn classify() {
        let t = ThingTopics::new("pk", "dn").unwrap();
        assert_eq!(
            t.classify("/sys/pk/dn/thing/service/property/set"),
            Inbound::PropertySet
        );
        assert_eq!(
            t.classify("/sys/pk/dn/thing/event/property/post_reply"),
            Inbound::PropertyPostReply
        );
        assert_eq!(
            t.classify("/sys/pk/dn/thing/service/Toggle"),
            Inbound::Service("Toggle")
        );
        assert_eq!(t.classify("/ext/ntp/pk/dn/response"), Inbound::NtpResponse);
        assert_eq!(
            t.classify("/sys/pk/dn/thing/service/Toggle_reply"),
            Inbound::Other
        );
        assert_eq!(
            t.classify("/sys/pk/dnx/thing/service/property/set"),
            Inbound::Other
        );
        assert_eq!(
            t.classify("/sys/pk/dn/thing/service/property/get"),
            Inbound::Other
        );
        assert_eq!(t.classify("/ext/ntp/pk/dn/request"), Inbound::Other);
        assert_eq!(t.classify(""), Inbound::Other);
    }
}
