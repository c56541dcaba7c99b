//! `pcp_rs.Request`: a request in progress of any result type (what the
//! `start_*` methods return and `pcp_rs.aio` awaits, and what the blocking
//! calls wait for), and [`Value`], the one conversion of its results.

use super::*;

/// A request's result as the binding holds it until Python asks for it.
#[derive(Clone)]
pub(crate) enum Value {
    Mapping(CoreMapping),
    Done,
    /// The server's epoch (ANNOUNCE).
    Epoch(u32),
    Ip(IpAddr),
}

impl Value {
    fn to_python(&self, py: Python<'_>, inner: &Arc<Inner>) -> PyResult<Py<PyAny>> {
        Ok(match self {
            Value::Mapping(m) => Py::new(py, PyMapping::new(inner, m.info().clone()))?.into_any(),
            Value::Done => py.None(),
            Value::Epoch(e) => e.into_pyobject(py)?.into_any().unbind(),
            Value::Ip(ip) => ip_str(*ip).into_pyobject(py)?.into_any().unbind(),
        })
    }
}

/// A core request and how its result becomes a [`Value`]: held as one type
/// without the second `Pending` per request that `Pending::map` would make.
pub(crate) struct Typed<T> {
    pending: Pending<T>,
    value: fn(T) -> Value,
}

trait AnyPending: Send + Sync {
    fn poll_outcome(&mut self, cx: &mut Context<'_>) -> Poll<Outcome>;
    fn wait_outcome(&self, slice: Duration) -> Option<Outcome>;
    fn take_outcome(&self) -> Option<Outcome>;
    fn cancel(&self);
}

impl<T: Send + 'static> AnyPending for Typed<T> {
    fn poll_outcome(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        Pin::new(&mut self.pending).poll(cx).map(|r| r.map(self.value))
    }
    fn wait_outcome(&self, slice: Duration) -> Option<Outcome> {
        self.pending.wait_timeout(slice).map(|r| r.map(self.value))
    }
    fn take_outcome(&self) -> Option<Outcome> {
        self.pending.try_take().map(|r| r.map(self.value))
    }
    fn cancel(&self) {
        self.pending.cancel()
    }
}

thread_local! {
    /// Set while [`_wait`] makes its Request. (Python code that converting
    /// its arguments runs, an `__index__` say, could make a Request of its
    /// own meanwhile: that one would neither be handed to the driver thread
    /// nor call done callbacks until waited on or dropped. Nothing does that.)
    static BLOCKING: Cell<bool> = const { Cell::new(false) };
}

/// The blocking calls (`Client.map` and the others, made at import time from
/// the `start_*` methods): `start(*args, **kwargs)`'s Request, waited on by
/// this thread, which runs the client's engine itself meanwhile: the driver
/// thread is not woken for it (no hop), unless the wait hands it over.
#[pyfunction]
#[pyo3(signature = (start, /, *args, **kwargs))]
pub(crate) fn _wait(
    py: Python<'_>,
    start: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<PyAny>> {
    BLOCKING.set(true);
    let made = start.call(args, kwargs);
    BLOCKING.set(false);
    made?.cast_into::<PyRequest>()?.get().wait(py, None)
}

/// A finished request's outcome, kept so that `result()` may be called again.
type Outcome = Result<Value, CoreError>;

/// The waker a request registers with the core when it is made. The core
/// wakes it on whichever thread completes the request: the driver thread,
/// or a caller of the same client that drives the engine while it waits.
/// It takes the Python done-callbacks under its own short lock, wakes the
/// threads in `Request.wait`, and runs the callbacks after releasing the
/// lock, attaching to the interpreter properly; no lock of the binding is
/// held while Python code runs.
pub(crate) struct Completion {
    /// The done-callbacks still to call; `None` once the request is done.
    callbacks: Mutex<Option<Vec<Py<PyAny>>>>,
    cond: Condvar,
}

impl Wake for Completion {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let callbacks = lock(&self.callbacks).take().unwrap_or_default();
        self.cond.notify_all();
        if !callbacks.is_empty() {
            let _ = Python::try_attach(move |py| callbacks.into_iter().for_each(|cb| call_reporting(py, &cb)));
        }
    }
}

/// A request in progress (what the `start_*` methods return; `pcp_rs.aio`
/// awaits these). The request goes on whether or not anyone waits;
/// `cancel()` abandons it.
///
/// Locks: `outcome` is held only to move the result out of the core's
/// `Pending` (never while waiting or running Python code); `pending` is not
/// behind a lock at all (`try_take` and `cancel` take `&self`), so `cancel()`
/// from one thread never waits for another thread's `wait()`.
#[pyclass(module = "pcp_rs._pcp_rs", name = "Request", frozen)]
pub(crate) struct PyRequest {
    inner: Arc<Inner>,
    pending: Box<dyn AnyPending>,
    outcome: Mutex<Option<Outcome>>,
    completion: Arc<Completion>,
    /// Made by a blocking call (`_wait`): its thread runs the engine.
    driven: bool,
}

impl PyRequest {
    pub(crate) fn new<T: Send + 'static>(inner: &Arc<Inner>, pending: Pending<T>, value: fn(T) -> Value) -> Self {
        let mut pending: Box<dyn AnyPending> = Box::new(Typed { pending, value });
        // Register our waker now, while we own the Pending: completion then
        // needs no lock of ours to be reached.
        let completion = Arc::new(Completion { callbacks: Mutex::new(Some(Vec::new())), cond: Condvar::new() });
        // Polling also hands the request to the driver thread; a blocking
        // call's own thread runs the engine instead, and its Request is never
        // seen by anyone who could add a callback.
        let driven = BLOCKING.get();
        let outcome = match driven {
            true => None,
            false => match pending.poll_outcome(&mut Context::from_waker(&Waker::from(completion.clone()))) {
                Poll::Ready(r) => {
                    *lock(&completion.callbacks) = None;
                    Some(r)
                }
                Poll::Pending => None,
            },
        };
        PyRequest { inner: inner.clone(), pending, outcome: Mutex::new(outcome), completion, driven }
    }

    /// The outcome if the request has finished (moved out of the core once).
    fn outcome(&self) -> Option<Outcome> {
        let mut r = lock(&self.outcome);
        if r.is_none() {
            *r = self.pending.take_outcome();
        }
        r.clone()
    }
}

#[pymethods]
impl PyRequest {
    fn done(&self) -> bool {
        self.outcome().is_some()
    }

    /// The result (a Mapping, None, an epoch or an address); raises the
    /// request's error, or RuntimeError if it has not finished.
    fn result(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self.outcome() {
            Some(Ok(v)) => v.to_python(py, &self.inner),
            Some(Err(e)) => Err(to_pyerr(py, e)),
            None => Err(PyRuntimeError::new_err("the request has not finished")),
        }
    }

    /// Blocks (GIL released; Ctrl-C cancels the request) until the request
    /// finishes or `timeout` seconds pass; returns the result or raises its
    /// error. Nothing of the request is locked while it waits: other threads
    /// may call `done()`, `result()` or `cancel()` on it meanwhile.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let timeout = opt_seconds(timeout, "timeout")?;
        let finished = sliced_wait(py, timeout, |slice| {
            if self.done() {
                return Some(());
            }
            if self.driven {
                // A blocking call's own request, which nobody else can see:
                // this thread runs the engine and reads the answer (no hop).
                let r = py.detach(|| self.pending.wait_outcome(slice))?;
                lock(&self.outcome).get_or_insert(r);
                return Some(());
            }
            // A request others may hold, with done callbacks: those run where
            // the request completes (the driver thread), never inside this
            // wait, where a callback that closes the client would stall it.
            let completion = self.completion.clone();
            py.detach(move || {
                let callbacks = lock(&completion.callbacks);
                if callbacks.is_some() {
                    let _ = completion.cond.wait_timeout(callbacks, slice);
                }
            });
            None
        });
        match finished {
            Ok(_) if self.done() => self.result(py),
            Ok(_) => Err(pyo3::exceptions::PyTimeoutError::new_err("the request is still in progress")),
            Err(e) => {
                // As a blocking call: Ctrl-C abandons the request.
                self.pending.cancel();
                Err(e)
            }
        }
    }

    /// Abandons the request (a mapping being made is deleted on the server if
    /// the request may have reached it).
    fn cancel(&self) {
        self.pending.cancel();
    }

    /// Calls `callback()` (no arguments) once the request finishes: at once
    /// (on this thread) if it has, else on whichever thread completes it (the
    /// client's driver thread, or a thread blocked in a call of the same
    /// client). The callback holds the GIL; keep it short. For asyncio pass
    /// e.g. `functools.partial(loop.call_soon_threadsafe, on_done)`.
    fn add_done_callback(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<()> {
        check_callable(py, &callback)?;
        let queued = lock(&self.completion.callbacks).as_mut().map(|v| v.push(callback.clone_ref(py))).is_some();
        if !queued {
            callback.call0(py)?;
        }
        Ok(())
    }

    /// `Request[Mapping]` and the like, for annotations.
    #[classmethod]
    fn __class_getitem__(cls: &Bound<'_, pyo3::types::PyType>, item: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = cls.py();
        Ok(py.import("types")?.getattr("GenericAlias")?.call1((cls, item))?.unbind())
    }
}
