//! The queue of publish requests between the client's handles and its driver, and the slots
//! that carry each request's outcome back to its [`PublishHandle`].
//!
//! A publish costs no allocation and no channel of its own: the request waits in a bounded
//! queue that the driver empties a batch at a time, and its outcome goes into a slot of a slab
//! that is reused once the handle has read it (or was dropped). The driver completes every
//! outcome of one turn under one lock and wakes only the handles that someone awaits.
//!
//! One mutex guards both directions, as in the inbox: each side holds it only to move a batch.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use mqtt_session::client::{Error, HandleState};
use mqtt_session::{Message, PublishOutcome, PublishToken};

/// Waiting publishers registered before the list is first cleared of repeats.
const SENDERS_LIMIT: usize = 64;

/// A publish request on its way to the driver.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) message: Message,
    pub(crate) token: PublishToken,
    /// Where its outcome goes.
    pub(crate) slot: usize,
}

/// Where one request's outcome stands.
#[derive(Debug)]
enum Slot {
    /// Unused, on the free list.
    Free,
    /// The flow is under way; the waker of whoever awaits the handle.
    Waiting(Option<Waker>),
    /// The outcome, for the handle to take. The rare error is boxed: a slot lives as long as
    /// its handle, and every publish a caller holds a handle to keeps one.
    Done(Result<PublishOutcome, Box<Error>>),
    /// The handle was dropped: the slot is freed when the flow completes.
    Detached,
}

#[derive(Debug)]
struct State {
    queue: VecDeque<Request>,
    capacity: usize,
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// Publishers waiting for room in the queue.
    senders: Vec<Waker>,
    /// When `senders` is next cleared of repeats.
    senders_limit: usize,
    driver: Option<Waker>,
    /// No request is taken any more.
    closed: bool,
}

/// Both the handles and the driver hold one of these.
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    shared: Arc<HandleState>,
}

/// Why a request was not queued.
#[derive(Debug)]
pub(crate) enum Refused {
    Full(Message),
    Closed(Message),
}

impl Outbox {
    /// A queue of at most `capacity` requests not yet taken by the driver.
    pub(crate) fn new(capacity: usize, shared: Arc<HandleState>) -> Self {
        Self {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                capacity: capacity.max(1),
                slots: Vec::new(),
                free: Vec::new(),
                senders: Vec::new(),
                senders_limit: SENDERS_LIMIT,
                driver: None,
                closed: false,
            }),
            shared,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a push, a pop or a slot write: a poisoned lock is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What a handle of a stopped client gets.
    pub(crate) fn stopped_error(&self) -> Error {
        match self.shared.stop_cause() {
            Some(cause) => Error::Stopped(cause),
            None => Error::Closed,
        }
    }

    /// Handle side: queues `message` if there is room; returns its slot.
    #[allow(clippy::result_large_err)] // the message comes back by value, unboxed
    pub(crate) fn try_push(&self, message: Message, token: PublishToken) -> Result<usize, Refused> {
        let state = self.lock();
        if state.closed {
            return Err(Refused::Closed(message));
        }
        if state.queue.len() >= state.capacity {
            return Err(Refused::Full(message));
        }
        Ok(Self::push(state, message, token))
    }

    /// Handle side: queues the message in `message` once there is room, registering `cx`
    /// to be woken when room frees.
    pub(crate) fn poll_push(
        &self,
        cx: &mut Context<'_>,
        message: &mut Option<Message>,
        token: PublishToken,
    ) -> Poll<Result<usize, Error>> {
        let mut state = self.lock();
        if state.closed {
            drop(state);
            return Poll::Ready(Err(self.stopped_error()));
        }
        if state.queue.len() >= state.capacity {
            Self::wait_for_room(&mut state, cx.waker());
            return Poll::Pending;
        }
        match message.take() {
            Some(message) => Poll::Ready(Ok(Self::push(state, message, token))),
            None => Poll::Ready(Err(Error::Closed)),
        }
    }

    /// Registers a publisher waiting for room, in constant time however many wait: a task
    /// polled again (it is the last one registered) is not added twice, and the list is
    /// cleared of repeats only when it has doubled since (so a task that is polled without
    /// being woken cannot grow it without bound).
    fn wait_for_room(state: &mut State, waker: &Waker) {
        if state.senders.last().is_some_and(|w| w.will_wake(waker)) {
            return;
        }
        state.senders.push(waker.clone());
        if state.senders.len() > state.senders_limit {
            let mut unique: Vec<Waker> = Vec::with_capacity(state.senders.len());
            for w in state.senders.drain(..) {
                if !unique.iter().any(|u| u.will_wake(&w)) {
                    unique.push(w);
                }
            }
            state.senders = unique;
            state.senders_limit = (2 * state.senders.len()).max(SENDERS_LIMIT);
        }
    }

    fn push(mut state: MutexGuard<'_, State>, message: Message, token: PublishToken) -> usize {
        let slot = match state.free.pop() {
            Some(slot) => {
                if let Some(s) = state.slots.get_mut(slot) {
                    *s = Slot::Waiting(None);
                }
                slot
            }
            None => {
                state.slots.push(Slot::Waiting(None));
                state.slots.len() - 1
            }
        };
        let was_empty = state.queue.is_empty();
        state.queue.push_back(Request {
            message,
            token,
            slot,
        });
        // The driver looks at the queue again after every batch it takes: only a queue that
        // was empty needs to wake it.
        if was_empty {
            if let Some(driver) = state.driver.take() {
                drop(state);
                driver.wake();
            }
        }
        slot
    }

    /// Driver side: moves up to `max` requests into `out`; registers `cx` to be woken by the
    /// next request when the queue is empty. `Ready(false)` once closed and empty.
    pub(crate) fn poll_take(
        &self,
        cx: &mut Context<'_>,
        out: &mut Vec<Request>,
        max: usize,
    ) -> Poll<bool> {
        let mut state = self.lock();
        if state.queue.is_empty() {
            if state.closed {
                return Poll::Ready(false);
            }
            if state
                .driver
                .as_ref()
                .is_none_or(|w| !w.will_wake(cx.waker()))
            {
                state.driver = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        let n = state.queue.len().min(max);
        out.extend(state.queue.drain(..n));
        let senders = std::mem::take(&mut state.senders);
        drop(state);
        for sender in senders {
            sender.wake();
        }
        Poll::Ready(true)
    }

    /// Driver side: takes no more requests; those queued are moved into `out`, and waiting
    /// publishers learn that the client stopped.
    pub(crate) fn close(&self, out: &mut Vec<Request>) {
        let mut state = self.lock();
        state.closed = true;
        out.extend(state.queue.drain(..));
        let senders = std::mem::take(&mut state.senders);
        drop(state);
        for sender in senders {
            sender.wake();
        }
    }

    /// Driver side: stores the outcomes of one turn and wakes the handles awaited.
    pub(crate) fn complete(&self, done: &mut Vec<(usize, Result<PublishOutcome, Error>)>) {
        if done.is_empty() {
            return;
        }
        let mut wake = Vec::new();
        let mut state = self.lock();
        for (slot, result) in done.drain(..) {
            let Some(s) = state.slots.get_mut(slot) else {
                continue;
            };
            match std::mem::replace(s, Slot::Free) {
                Slot::Waiting(waker) => {
                    *s = Slot::Done(result.map_err(Box::new));
                    wake.extend(waker);
                }
                Slot::Detached => state.free.push(slot),
                // Completed twice: keep the first outcome.
                other => *s = other,
            }
        }
        drop(state);
        for waker in wake {
            waker.wake();
        }
    }

    /// Driver side, as it goes away: every flow still waiting fails with why the client
    /// stopped (the driver answers each one before it finishes; this covers a driver dropped
    /// unpolled).
    pub(crate) fn abandon(&self) {
        // Requests still queued are dropped with the queue; their handles fail below.
        self.close(&mut Vec::new());
        let cause = self.shared.stop_cause();
        let mut state = self.lock();
        let mut wake = Vec::new();
        let State { slots, free, .. } = &mut *state;
        for (i, s) in slots.iter_mut().enumerate() {
            match s {
                Slot::Waiting(waker) => {
                    wake.extend(waker.take());
                    let error = cause.clone().map_or(Error::Closed, Error::Stopped);
                    *s = Slot::Done(Err(Box::new(error)));
                }
                Slot::Detached => {
                    *s = Slot::Free;
                    free.push(i);
                }
                Slot::Free | Slot::Done(_) => {}
            }
        }
        drop(state);
        for waker in wake {
            waker.wake();
        }
    }

    /// Handle side: the outcome, if the flow completed; registers `cx` otherwise.
    fn poll_outcome(
        &self,
        cx: &mut Context<'_>,
        slot: usize,
    ) -> Poll<Result<PublishOutcome, Error>> {
        let mut state = self.lock();
        let Some(s) = state.slots.get_mut(slot) else {
            return Poll::Ready(Err(Error::Closed));
        };
        match s {
            Slot::Waiting(waker) => {
                if waker.as_ref().is_none_or(|w| !w.will_wake(cx.waker())) {
                    *waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Slot::Done(_) => {
                let Slot::Done(result) = std::mem::replace(s, Slot::Free) else {
                    return Poll::Ready(Err(Error::Closed));
                };
                state.free.push(slot);
                Poll::Ready(result.map_err(|error| *error))
            }
            Slot::Free | Slot::Detached => Poll::Ready(Err(Error::Closed)),
        }
    }

    /// Handle side: the handle is gone before it read its outcome.
    fn detach(&self, slot: usize) {
        let mut state = self.lock();
        let Some(s) = state.slots.get_mut(slot) else {
            return;
        };
        match s {
            Slot::Waiting(_) => *s = Slot::Detached,
            Slot::Done(_) => {
                *s = Slot::Free;
                state.free.push(slot);
            }
            Slot::Free | Slot::Detached => {}
        }
    }

    /// Gives back what the queue and the slots kept beyond what they hold now: the free
    /// slots at the end go (with their places on the free list), the rest keep their places
    /// for the handles that point at them.
    pub(crate) fn release_memory(&self) {
        let mut state = self.lock();
        let State {
            queue,
            slots,
            free,
            senders,
            ..
        } = &mut *state;
        queue.shrink_to_fit();
        while matches!(slots.last(), Some(Slot::Free)) {
            slots.pop();
        }
        free.retain(|&slot| slot < slots.len());
        slots.shrink_to_fit();
        free.shrink_to_fit();
        senders.shrink_to_fit();
    }

    /// Slots in use and requests queued, for tests of the bounds.
    #[cfg(test)]
    fn in_use(&self) -> (usize, usize) {
        let state = self.lock();
        (state.slots.len() - state.free.len(), state.queue.len())
    }
}

/// The flow of one published message, returned once the client has taken the message into
/// its queue; awaiting it gives the outcome (like a delivery report): QoS 0 once the message
/// was written to the transport, QoS 1 on PUBACK, QoS 2 on PUBCOMP, or why it was not
/// delivered.
///
/// Awaiting is optional: dropping the handle does not cancel anything, the message still
/// goes out and completes, only its outcome is not reported. A loop that publishes and drops
/// (or keeps) the handles sends up to the in-flight window at once.
pub struct PublishHandle {
    outbox: Arc<Outbox>,
    slot: usize,
    token: PublishToken,
    finished: bool,
}

impl PublishHandle {
    pub(crate) fn new(outbox: Arc<Outbox>, slot: usize, token: PublishToken) -> Self {
        Self {
            outbox,
            slot,
            token,
            finished: false,
        }
    }

    /// The message's token, unique within the client (the one a store reports it with after
    /// a restart, in [`Event::Published`](mqtt_session::client::Event::Published)).
    pub fn token(&self) -> PublishToken {
        self.token
    }
}

impl fmt::Debug for PublishHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishHandle")
            .field("token", &self.token)
            .field("finished", &self.finished)
            .finish()
    }
}

impl Future for PublishHandle {
    type Output = Result<PublishOutcome, Error>;

    /// The outcome once the flow completes. Polling again after that gives
    /// [`Error::Closed`].
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.finished {
            return Poll::Ready(Err(Error::Closed));
        }
        let outcome = self.outbox.poll_outcome(cx, self.slot);
        if outcome.is_ready() {
            self.finished = true;
        }
        outcome
    }
}

impl Drop for PublishHandle {
    fn drop(&mut self) {
        if !self.finished {
            self.outbox.detach(self.slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_session::client::{ClientCore, ClientOptions};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn outbox(capacity: usize) -> Arc<Outbox> {
        let (core, _) = ClientCore::<()>::new(ClientOptions::new("mqtt://h")).unwrap();
        Arc::new(Outbox::new(capacity, Arc::new(HandleState::new(&core))))
    }

    fn message() -> Message {
        Message::new("t", "x").unwrap()
    }

    /// A queued request and its handle for each token.
    fn handles(outbox: &Arc<Outbox>, tokens: std::ops::RangeInclusive<u64>) -> Vec<PublishHandle> {
        tokens
            .map(|t| {
                let slot = outbox.try_push(message(), PublishToken(t)).unwrap();
                PublishHandle::new(outbox.clone(), slot, PublishToken(t))
            })
            .collect()
    }

    /// Completes every request in `taken` as sent.
    fn complete_sent(outbox: &Outbox, taken: &[Request]) {
        let mut done: Vec<_> = taken
            .iter()
            .map(|r| (r.slot, Ok(PublishOutcome::Sent)))
            .collect();
        outbox.complete(&mut done);
    }

    #[test]
    fn a_full_queue_gives_the_message_back_and_taking_wakes_the_publisher() {
        let outbox = outbox(2);
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        outbox.try_push(message(), PublishToken(1)).unwrap();
        outbox.try_push(message(), PublishToken(2)).unwrap();
        assert!(matches!(
            outbox.try_push(message(), PublishToken(3)),
            Err(Refused::Full(m)) if m.topic.as_str() == "t"
        ));
        let mut waiting = Some(message());
        assert!(outbox
            .poll_push(&mut cx, &mut waiting, PublishToken(3))
            .is_pending());
        let mut taken = Vec::new();
        assert_eq!(outbox.poll_take(&mut cx, &mut taken, 1), Poll::Ready(true));
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "room freed: publisher woken"
        );
        assert!(outbox
            .poll_push(&mut cx, &mut waiting, PublishToken(3))
            .is_ready());
    }

    #[test]
    fn outcomes_reach_awaited_handles_and_slots_are_reused() {
        let outbox = outbox(8);
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut handles: Vec<PublishHandle> = handles(&outbox, 1..=3);
        let mut taken = Vec::new();
        assert!(outbox.poll_take(&mut cx, &mut taken, 10).is_ready());
        // The third handle is dropped before its flow completes.
        drop(handles.pop());
        assert!(Pin::new(&mut handles[0]).poll(&mut cx).is_pending());
        complete_sent(&outbox, &taken);
        for handle in &mut handles {
            assert!(matches!(
                Pin::new(handle).poll(&mut cx),
                Poll::Ready(Ok(PublishOutcome::Sent))
            ));
        }
        drop(handles);
        assert_eq!(outbox.in_use(), (0, 0), "every slot is free again");
        let slot = outbox.try_push(message(), PublishToken(4)).unwrap();
        assert!(slot < 3, "a free slot is reused");
    }

    #[test]
    fn the_outbox_holds_at_most_its_capacity_and_a_slot_per_unfinished_flow() {
        const CAPACITY: usize = 4;
        const IN_FLIGHT: usize = 10;
        let outbox = outbox(CAPACITY);
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut taken = Vec::new();
        let mut flows = VecDeque::new();
        let mut refused = 0;
        // A publisher that drops every handle at once, and a driver that takes a batch per
        // turn and completes the oldest flow beyond its window of ten.
        for token in 0..100_000 {
            match outbox.try_push(message(), PublishToken(token)) {
                Ok(slot) => drop(PublishHandle::new(
                    outbox.clone(),
                    slot,
                    PublishToken(token),
                )),
                Err(Refused::Full(_)) => refused += 1,
                Err(Refused::Closed(_)) => unreachable!(),
            }
            let (slots, queued) = outbox.in_use();
            assert!(queued <= CAPACITY, "queue beyond its capacity: {queued}");
            assert!(slots <= CAPACITY + IN_FLIGHT, "slots leak: {slots}");
            if token % 3 == 0 {
                let _ = outbox.poll_take(&mut cx, &mut taken, 2);
                flows.extend(taken.drain(..).map(|r| r.slot));
            }
            let mut done = Vec::new();
            while flows.len() > IN_FLIGHT - 1 {
                done.extend(
                    flows
                        .pop_front()
                        .map(|slot| (slot, Ok(PublishOutcome::Sent))),
                );
            }
            outbox.complete(&mut done);
        }
        assert!(refused > 0, "the publisher outran the driver");
        assert!(
            outbox.lock().slots.len() <= CAPACITY + IN_FLIGHT,
            "the slab never grew past the bound"
        );
    }

    #[test]
    fn a_waiting_publisher_is_registered_once_however_often_it_is_polled() {
        let outbox = outbox(1);
        outbox.try_push(message(), PublishToken(0)).unwrap();
        let a = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let b = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let mut waiting = Some(message());
        for _ in 0..10_000 {
            for waker in [&a, &b] {
                let mut cx = Context::from_waker(waker);
                let poll = outbox.poll_push(&mut cx, &mut waiting, PublishToken(1));
                assert!(poll.is_pending());
            }
        }
        let senders = outbox.lock().senders.len();
        assert!(
            senders <= SENDERS_LIMIT + 1,
            "{senders} wakers for two tasks"
        );
    }

    #[test]
    fn a_driver_that_goes_away_fails_every_waiting_handle() {
        let outbox = outbox(8);
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let slot = outbox.try_push(message(), PublishToken(1)).unwrap();
        let mut queued = PublishHandle::new(outbox.clone(), slot, PublishToken(1));
        outbox.abandon();
        assert!(matches!(
            Pin::new(&mut queued).poll(&mut cx),
            Poll::Ready(Err(Error::Closed))
        ));
        assert!(matches!(
            outbox.try_push(message(), PublishToken(2)),
            Err(Refused::Closed(_))
        ));
    }

    /// A slot stays as long as its handle: it must not carry the error's full size.
    #[test]
    fn a_slot_is_a_few_words() {
        assert!(
            std::mem::size_of::<Slot>() <= 48,
            "{}",
            std::mem::size_of::<Slot>()
        );
    }

    /// Capacities of the queue and the slots.
    fn capacities(outbox: &Outbox) -> (usize, usize) {
        let state = outbox.lock();
        (state.queue.capacity(), state.slots.len())
    }

    #[test]
    fn released_memory_keeps_the_slots_of_live_handles() {
        let outbox = outbox(1024);
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut handles: Vec<PublishHandle> = handles(&outbox, 1..=500);
        let mut taken = Vec::new();
        assert!(outbox.poll_take(&mut cx, &mut taken, 1024).is_ready());
        complete_sent(&outbox, &taken);
        // Every handle but the tenth is dropped, its outcome unread; the tenth holds its slot.
        let kept = handles.remove(9);
        drop(handles);
        assert!(capacities(&outbox).0 >= 500 && capacities(&outbox).1 == 500);
        outbox.release_memory();
        assert_eq!(
            capacities(&outbox),
            (0, 10),
            "the slots up to the live one stay"
        );
        assert_eq!(outbox.in_use(), (1, 0));
        // The free list no longer names the slots that went: new requests reuse the nine
        // below the live one, then grow the list again.
        let slots: Vec<usize> = (0..12)
            .map(|t| outbox.try_push(message(), PublishToken(600 + t)).unwrap())
            .collect();
        let mut sorted = slots.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 12, "no slot handed out twice: {slots:?}");
        assert!(
            !slots.contains(&kept.slot),
            "the live handle's slot is its own"
        );
        let mut kept = kept;
        assert!(matches!(
            Pin::new(&mut kept).poll(&mut cx),
            Poll::Ready(Ok(PublishOutcome::Sent))
        ));
    }
}
