//! `pcp_rs.Request`: a request in progress (what `pcp_rs.aio` awaits).

use super::*;

#[derive(Clone)]
pub(crate) enum Out {
    Map(CoreMapping),
    Unit,
    Epoch(u32),
    Addr(IpAddr),
}

/// Any request as one type: its result as an [`Out`] (the core's
/// `Pending::map`).
pub(crate) type Kind = Pending<Out>;

/// The waker a request registers with the core when it is made. The core
/// wakes it on whichever thread completes the request: the driver thread,
/// or a caller of the same client that drives the engine while it blocks.
/// It only flips `done` and notifies under its own short lock, then runs the
/// Python done-callbacks after releasing it, attaching to the interpreter
/// properly; no lock of the binding is held while Python code runs, and a
/// thread waiting in `Request.wait` holds none (the condvar releases it).
pub(crate) struct Completion {
    pub(crate) st: Mutex<CompletionState>,
    pub(crate) cond: Condvar,
}

pub(crate) struct CompletionState {
    pub(crate) done: bool,
    pub(crate) callbacks: Vec<Py<PyAny>>,
}

impl Completion {
    pub(crate) fn new(done: bool) -> Arc<Self> {
        Arc::new(Completion { st: Mutex::new(CompletionState { done, callbacks: Vec::new() }), cond: Condvar::new() })
    }

    /// Sleeps until done or `d` passes (GIL released by the caller).
    pub(crate) fn wait_done(&self, d: Duration) {
        let st = lock(&self.st);
        if !st.done {
            let _ = self.cond.wait_timeout(st, d);
        }
    }
}

impl Wake for Completion {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let callbacks = {
            let mut st = lock(&self.st);
            st.done = true;
            std::mem::take(&mut st.callbacks)
        };
        self.cond.notify_all();
        if callbacks.is_empty() {
            return;
        }
        let _ = Python::try_attach(move |py| {
            for cb in callbacks {
                if let Err(e) = cb.call0(py) {
                    e.write_unraisable(py, Some(cb.bind(py)));
                }
            }
        });
    }
}

/// A request in progress (what the `start_*` methods return; `pcp_rs.aio`
/// awaits these). The request goes on whether or not anyone waits;
/// `cancel()` abandons it.
///
/// Locks: `result` is held only to move the outcome out of the core's
/// `Pending` (never while waiting or running Python code); `kind` is not
/// behind a lock at all (`try_take` and `cancel` take `&self`), so `cancel()`
/// from one thread never waits for another thread's `wait()`.
#[pyclass(module = "pcp_rs._pcp_rs", name = "Request", frozen)]
pub(crate) struct PyRequest {
    pub(crate) inner: Arc<Inner>,
    pub(crate) kind: Kind,
    pub(crate) result: Mutex<Option<Result<Out, CoreError>>>,
    pub(crate) completion: Arc<Completion>,
}

impl PyRequest {
    pub(crate) fn new(inner: &Arc<Inner>, mut kind: Kind) -> Self {
        // Register our waker now, while we own the Pending: completion then
        // needs no lock of ours to be reached.
        let completion = Completion::new(false);
        let waker = Waker::from(completion.clone());
        let mut cx = Context::from_waker(&waker);
        let result = match Pin::new(&mut kind).poll(&mut cx) {
            Poll::Ready(r) => {
                lock(&completion.st).done = true;
                Some(r)
            }
            Poll::Pending => None,
        };
        PyRequest { inner: inner.clone(), kind, result: Mutex::new(result), completion }
    }

    /// Moves the outcome out of the core if it has arrived.
    pub(crate) fn settle(&self) -> bool {
        let mut r = lock(&self.result);
        if r.is_none() {
            *r = self.kind.try_take();
        }
        r.is_some()
    }

    pub(crate) fn convert(&self, py: Python<'_>, r: Result<Out, CoreError>) -> PyResult<Py<PyAny>> {
        match r {
            Ok(Out::Map(m)) => Ok(Py::new(py, PyMapping::new(&self.inner, m.info().clone()))?.into_any()),
            Ok(Out::Unit) => Ok(py.None()),
            Ok(Out::Epoch(e)) => Ok(e.into_pyobject(py)?.into_any().unbind()),
            Ok(Out::Addr(ip)) => Ok(ip_str(ip).into_pyobject(py)?.into_any().unbind()),
            Err(e) => Err(to_pyerr(py, e)),
        }
    }
}

#[pymethods]
impl PyRequest {
    fn done(&self) -> bool {
        self.settle()
    }

    /// The result (a Mapping, None, an epoch or an address); raises the
    /// request's error, or RuntimeError if it has not finished.
    fn result(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if !self.settle() {
            return Err(PyRuntimeError::new_err("the request has not finished"));
        }
        let r = lock(&self.result).clone().expect("settled");
        self.convert(py, r)
    }

    /// Blocks (GIL released; Ctrl-C cancels the request) until the request
    /// finishes or `timeout` seconds pass; returns the result or raises its
    /// error. Nothing is locked while it sleeps: other threads may call `done()`,
    /// `result()` or `cancel()` on the same request meanwhile.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let deadline = timeout.map(|t| seconds(t, "timeout")).transpose()?.map(|t| Instant::now() + t);
        loop {
            if self.settle() {
                return self.result(py);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(pyo3::exceptions::PyTimeoutError::new_err("the request is still in progress"));
            }
            let slice = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
                None => SLICE,
            };
            let completion = self.completion.clone();
            py.detach(move || completion.wait_done(slice));
            if let Err(e) = py.check_signals() {
                // As the blocking calls do: Ctrl-C abandons the request.
                self.kind.cancel();
                return Err(e);
            }
        }
    }

    /// Abandons the request (a mapping being made is deleted on the server if
    /// the request may have reached it).
    fn cancel(&self) {
        self.kind.cancel();
    }

    /// Calls `callback()` (no arguments) once the request finishes: at once
    /// (on this thread) if it has, else on whichever thread completes it (the
    /// client's driver thread, or a thread blocked in a call of the same
    /// client). The callback holds the GIL; keep it short. For asyncio pass
    /// e.g. `functools.partial(loop.call_soon_threadsafe, on_done)`.
    fn add_done_callback(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<()> {
        if !callback.bind(py).is_callable() {
            return Err(PyTypeError::new_err("callback must be callable"));
        }
        let now = {
            let mut st = lock(&self.completion.st);
            if st.done {
                true
            } else {
                st.callbacks.push(callback.clone_ref(py));
                false
            }
        };
        if now {
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
