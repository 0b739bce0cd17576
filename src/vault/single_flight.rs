//! One refresh per link at a time inside this process. Callers for the same
//! link queue on one async mutex; the first refreshes, the rest find the new
//! version when their turn comes and return without calling upstream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

#[derive(Clone, Default)]
pub struct SingleFlight {
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// Held while refreshing; dropping it lets the next caller in and forgets
/// the key once nobody waits on it.
pub struct Flight {
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
    owner: SingleFlight,
}

impl SingleFlight {
    pub async fn enter(&self, key: &str) -> Flight {
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

impl Drop for Flight {
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
        let flights = SingleFlight::default();
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
    async fn different_keys_do_not_wait_on_each_other() {
        let flights = SingleFlight::default();
        let _a = flights.enter("a").await;
        let b = tokio::time::timeout(std::time::Duration::from_secs(1), flights.enter("b")).await;
        assert!(b.is_ok());
    }
}
