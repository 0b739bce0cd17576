//! One refresh per link at a time inside this process. Callers for the same
//! link queue on one async mutex; the first refreshes and leaves its result
//! in the flight, so each caller after it returns that result without a
//! database read or upstream call. The result lives only while callers are
//! queued: the entry goes when the last one leaves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

type Slot<T> = Arc<tokio::sync::Mutex<Option<T>>>;

pub struct SingleFlight<T> {
    locks: Arc<Mutex<HashMap<String, Slot<T>>>>,
}

impl<T> Clone for SingleFlight<T> {
    fn clone(&self) -> Self {
        SingleFlight {
            locks: self.locks.clone(),
        }
    }
}

impl<T> Default for SingleFlight<T> {
    fn default() -> Self {
        SingleFlight {
            locks: Arc::default(),
        }
    }
}

/// Held while refreshing; dropping it lets the next caller in and forgets
/// the key once nobody waits on it.
pub struct Flight<T> {
    key: String,
    guard: Option<OwnedMutexGuard<Option<T>>>,
    owner: SingleFlight<T>,
}

impl<T> Flight<T> {
    /// What the caller before this one left.
    pub fn result(&self) -> Option<&T> {
        self.guard.as_ref().and_then(|g| g.as_ref())
    }

    /// Leaves a result for the callers queued behind this one.
    pub fn set(&mut self, value: T) {
        if let Some(g) = self.guard.as_mut() {
            **g = Some(value);
        }
    }
}

impl<T> SingleFlight<T> {
    pub async fn enter(&self, key: &str) -> Flight<T> {
        let lock = {
            let mut locks = self.locks.lock().expect("the lock map is never poisoned");
            locks.entry(key.to_string()).or_default().clone()
        };
        Flight {
            key: key.to_string(),
            guard: Some(lock.lock_owned().await),
            owner: self.clone(),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.locks.lock().unwrap().len()
    }
}

impl<T> Drop for Flight<T> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self
            .owner
            .locks
            .lock()
            .expect("the lock map is never poisoned");
        // Only the map holds it: nobody is waiting, so the entry can go.
        if locks
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            locks.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn callers_for_one_key_run_one_at_a_time_and_the_key_is_forgotten() {
        let flights = SingleFlight::<()>::default();
        let inside = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (flights, inside, max) = (flights.clone(), inside.clone(), max.clone());
                tokio::spawn(async move {
                    let _flight = flights.enter("link-1").await;
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(now, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(max.load(Ordering::SeqCst), 1);
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test]
    async fn a_result_reaches_the_callers_queued_behind_it_and_no_later_ones() {
        let flights = SingleFlight::<u32>::default();
        let mut first = flights.enter("k").await;
        let second = tokio::spawn({
            let flights = flights.clone();
            async move { flights.enter("k").await.result().copied() }
        });
        tokio::task::yield_now().await;
        assert_eq!(first.result(), None);
        first.set(7);
        drop(first);
        assert_eq!(second.await.unwrap(), Some(7));
        // Nobody was queued any more: the next burst starts empty.
        assert_eq!(flights.enter("k").await.result(), None);
    }

    #[tokio::test]
    async fn different_keys_do_not_wait_on_each_other() {
        let flights = SingleFlight::<()>::default();
        let _a = flights.enter("a").await;
        let b = tokio::time::timeout(std::time::Duration::from_secs(1), flights.enter("b")).await;
        assert!(b.is_ok());
    }
}
