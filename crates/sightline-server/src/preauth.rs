//! The budget of app sockets that are open but not yet authenticated.
//!
//! An app socket opens without credentials; its `tpa_connection_init`
//! carries the API key. Until the key is verified the socket holds a
//! [`PreAuthSlot`] from this budget (in total and per source address)
//! instead of a place under the connection limit, so sockets that never
//! send an init cannot take the places of real glasses and apps. Once the
//! key is verified the connection takes a place under the connection limit
//! and gives its pre-auth slot back; a socket that closes gives it back too.
//!
//! The per-address count keys on the TCP peer address: behind a reverse
//! proxy every socket comes from the proxy, and the total bound is the one
//! that applies.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use thiserror::Error;

/// Open unauthenticated sockets, in total and by source address. The map
/// has an entry only for an address with a socket open, so it never holds
/// more entries than the total bound.
#[derive(Debug, Default)]
pub struct PreAuthBudget {
    open: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_address: HashMap<Option<IpAddr>, usize>,
}

/// Why an unauthenticated socket was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PreAuthRefusal {
    #[error("the server holds as many unauthenticated app sockets as it may ({0})")]
    Total(usize),
    #[error("this address holds as many unauthenticated app sockets as it may ({0})")]
    Address(usize),
}

/// One unauthenticated socket; dropping it frees its place.
#[derive(Debug)]
pub struct PreAuthSlot {
    budget: Arc<PreAuthBudget>,
    address: Option<IpAddr>,
}

impl PreAuthBudget {
    /// Takes a place for a socket from `address`, if fewer than `max_total`
    /// are open and fewer than `max_per_address` from that address.
    pub fn try_take(
        self: &Arc<Self>,
        address: Option<IpAddr>,
        max_total: usize,
        max_per_address: usize,
    ) -> Result<PreAuthSlot, PreAuthRefusal> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= max_total {
            return Err(PreAuthRefusal::Total(max_total));
        }
        let from_address = open.by_address.get(&address).copied().unwrap_or(0);
        if from_address >= max_per_address {
            return Err(PreAuthRefusal::Address(max_per_address));
        }
        open.total += 1;
        open.by_address.insert(address, from_address + 1);
        Ok(PreAuthSlot {
            budget: self.clone(),
            address,
        })
    }

    /// Unauthenticated sockets open now.
    pub fn open(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl Drop for PreAuthSlot {
    fn drop(&mut self) {
        let mut open = self
            .budget
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

/// HTTP 503 for an app upgrade past the unauthenticated budget.
pub fn too_many_unauthenticated(refusal: PreAuthRefusal) -> actix_web::HttpResponse {
    actix_web::HttpResponse::ServiceUnavailable().json(serde_json::json!({
        "type": "connection_error",
        "code": "TOO_MANY_UNAUTHENTICATED",
        "message": format!("{refusal}; send tpa_connection_init promptly and try again later"),
        "timestamp": crate::now_iso(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_in_total_and_per_address_and_freed_on_drop() {
        let budget = Arc::new(PreAuthBudget::default());
        let a: Option<IpAddr> = "10.0.0.1".parse().ok();
        let b: Option<IpAddr> = "10.0.0.2".parse().ok();
        let a1 = budget.try_take(a, 3, 2).expect("a1");
        let _a2 = budget.try_take(a, 3, 2).expect("a2");
        assert_eq!(
            budget.try_take(a, 3, 2).unwrap_err(),
            PreAuthRefusal::Address(2)
        );
        let _b1 = budget.try_take(b, 3, 2).expect("b1");
        assert_eq!(
            budget.try_take(b, 3, 2).unwrap_err(),
            PreAuthRefusal::Total(3)
        );
        drop(a1);
        assert_eq!(budget.open(), 2);
        assert!(budget.try_take(a, 3, 2).is_ok());
        assert!(budget.open.lock().expect("lock").by_address.len() <= 2);
    }
}
