//! `ContextVar`: values that follow a task, as asyncio's context variables do.
//!
//! How it works: a thread has a *current context*, a small persistent map
//! from variable to value (`Rc` of a vector of `(key, Rc<value>)`; a
//! variable's key is its address). A task is spawned with a copy of its
//! spawner's current context (an `Rc` clone) and, while it is polled, its
//! context is the thread's current one; afterwards it is put back into the
//! task. `set` copies the map first when another task shares it
//! (`Rc::make_mut`), so a task's changes are its own: children see the values
//! their parent had when they were spawned, and the parent never sees what a
//! child sets. Nothing is copied or allocated for programs that set no
//! variable. A variable made with [`ContextVar::new`] holds `Send + Sync`
//! values in an `Arc`: a `spawn_blocking` closure runs with a copy of its
//! caller's context made of those (an `Arc` clone each, like asyncio's
//! `to_thread`); values of a [`ContextVar::new_local`] variable stay on their
//! thread. Tasks sent to another shard (`spawn_on`) start with an empty
//! context.

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

/// A task's variables: `(variable key, value)` pairs.
pub(crate) type Context = Rc<Vec<(usize, Value)>>;

/// One variable's value in a context.
#[derive(Clone)]
pub(crate) enum Value {
    /// Of a `new_local` variable: stays on its thread.
    Local(Rc<dyn Any>),
    /// Of a `new` variable: may be copied to another thread.
    Shared(Arc<dyn Any + Send + Sync>),
}

impl Value {
    fn get(&self) -> &dyn Any {
        match self {
            Value::Local(v) => &**v,
            Value::Shared(v) => &**v,
        }
    }
}

/// The thread-safe part of a context (its `Send + Sync` values), for a
/// closure that runs on another thread.
pub(crate) struct SendContext(Vec<(usize, Arc<dyn Any + Send + Sync>)>);

/// A copy of the current context's `Send + Sync` values; `None` when there
/// are none.
pub(crate) fn capture_send() -> Option<SendContext> {
    let ctx = capture()?;
    let vars: Vec<_> = ctx
        .iter()
        .filter_map(|(k, v)| match v {
            Value::Shared(v) => Some((*k, v.clone())),
            Value::Local(_) => None,
        })
        .collect();
    (!vars.is_empty()).then_some(SendContext(vars))
}

impl SendContext {
    /// Runs `f` with this context as the thread's current one, then
    /// restores the thread's own.
    pub(crate) fn run<R>(self, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Context>);
        impl Drop for Restore {
            fn drop(&mut self) {
                drop(replace(self.0.take()));
            }
        }
        USED.with(|u| u.set(true));
        let vars = self.0.into_iter().map(|(k, v)| (k, Value::Shared(v)));
        let _restore = Restore(replace(Some(Rc::new(vars.collect()))));
        f()
    }
}

thread_local! {
    static CURRENT: Cell<Option<Context>> = const { Cell::new(None) };
    /// Some variable was set on this thread once: until then every context
    /// here is empty and tasks skip the swap (a plain `bool` needs no
    /// destructor registration, so reading it is one load).
    static USED: Cell<bool> = const { Cell::new(false) };
}

/// False while no variable was ever set on this thread: then the current
/// context and every task's are empty, and polling need not swap them.
#[inline]
pub(crate) fn in_use() -> bool {
    USED.with(Cell::get)
}

/// The current context, for a task about to be spawned.
#[inline]
pub(crate) fn capture() -> Option<Context> {
    if !in_use() {
        return None;
    }
    CURRENT.with(|c| {
        let ctx = c.take();
        let copy = ctx.clone();
        c.set(ctx);
        copy
    })
}

/// Makes `ctx` the current context; returns the one it replaces.
#[inline]
pub(crate) fn replace(ctx: Option<Context>) -> Option<Context> {
    CURRENT.with(|c| c.replace(ctx))
}

/// A variable whose value belongs to the current task (or thread, outside
/// tasks), inherited by the tasks it spawns: asyncio's `ContextVar`.
///
/// Declare it as a `static`; [`set`](ContextVar::set) gives it a value in
/// the current context, [`get`](ContextVar::get) / [`with`](ContextVar::with)
/// read it. A task spawned with [`spawn`](crate::spawn) (or a
/// [`TaskGroup`](crate::TaskGroup)) starts with the values its spawner had
/// at that moment; what either sets afterwards the other does not see.
/// A closure given to [`spawn_blocking`](crate::spawn_blocking) runs with
/// the values its caller had of variables made with
/// [`new`](ContextVar::new) (`Send + Sync` values, shared through an `Arc`),
/// as asyncio's `to_thread` copies the context; variables made with
/// [`new_local`](ContextVar::new_local) hold any value but never leave their
/// thread. Tasks started by [`spawn_on`](crate::spawn_on) begin with no
/// values.
///
/// ```
/// use corio::ContextVar;
///
/// static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");
///
/// corio::run(async {
///     REQUEST_ID.set(7);
///     let child = corio::spawn(async {
///         let inherited = REQUEST_ID.get();
///         REQUEST_ID.set(8); // the child's own value from here on
///         (inherited, REQUEST_ID.get())
///     });
///     assert_eq!(child.await.unwrap(), (Some(7), Some(8)));
///     assert_eq!(REQUEST_ID.get(), Some(7), "the parent's value is untouched");
/// });
/// ```
pub struct ContextVar<T: 'static> {
    name: &'static str,
    /// Wraps a value for the context map (`Value::Shared` or `Local`).
    wrap: fn(T) -> Value,
}

fn wrap_shared<T: Send + Sync + 'static>(v: T) -> Value {
    Value::Shared(Arc::new(v))
}

fn wrap_local<T: 'static>(v: T) -> Value {
    Value::Local(Rc::new(v))
}

impl<T: Send + Sync + 'static> ContextVar<T> {
    /// A variable named `name` (the name is for `Debug` output only) whose
    /// values also reach [`spawn_blocking`](crate::spawn_blocking) closures.
    pub const fn new(name: &'static str) -> ContextVar<T> {
        ContextVar {
            name,
            wrap: wrap_shared::<T>,
        }
    }
}

impl<T: 'static> ContextVar<T> {
    /// A variable for values that are not `Send + Sync` (an `Rc`, say):
    /// like [`new`](ContextVar::new), but `spawn_blocking` closures do not
    /// see its values.
    ///
    /// ```
    /// use std::rc::Rc;
    ///
    /// static SESSION: corio::ContextVar<Rc<str>> = corio::ContextVar::new_local("session");
    ///
    /// corio::run(async {
    ///     SESSION.set(Rc::from("abc"));
    ///     let seen = corio::spawn(async { SESSION.get() }).await.unwrap();
    ///     assert_eq!(seen.as_deref(), Some("abc"));
    ///     let on_pool = corio::spawn_blocking(|| SESSION.with(|v| v.is_some())).await.unwrap();
    ///     assert!(!on_pool);
    /// });
    /// ```
    pub const fn new_local(name: &'static str) -> ContextVar<T> {
        ContextVar {
            name,
            wrap: wrap_local::<T>,
        }
    }

    /// The variable's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    fn key(&'static self) -> usize {
        self as *const Self as usize
    }

    /// Runs `f` with the variable's value in the current context (`None`
    /// when it has none).
    pub fn with<R>(&'static self, f: impl FnOnce(Option<&T>) -> R) -> R {
        let ctx = replace(None);
        let value = ctx.as_ref().and_then(|ctx| {
            let (_, v) = ctx.iter().find(|(k, _)| *k == self.key())?;
            Some(v.clone())
        });
        replace(ctx);
        // The value is an `Rc`/`Arc` clone: `f` may read or set variables itself.
        f(value.as_ref().and_then(|v| v.get().downcast_ref::<T>()))
    }

    /// Sets the variable's value in the current context; the tasks spawned
    /// from here on inherit it.
    pub fn set(&'static self, value: T) {
        self.update(Some((self.wrap)(value)));
    }

    /// Removes the variable's value from the current context.
    pub fn remove(&'static self) {
        self.update(None);
    }

    fn update(&'static self, value: Option<Value>) {
        USED.with(|u| u.set(true));
        let key = self.key();
        let mut ctx = replace(None).unwrap_or_default();
        // Copies the map if another task shares it.
        let vars = Rc::make_mut(&mut ctx);
        let old = match (vars.iter().position(|(k, _)| *k == key), value) {
            (Some(i), Some(v)) => Some(std::mem::replace(&mut vars[i].1, v)),
            (Some(i), None) => Some(vars.swap_remove(i).1),
            (None, Some(v)) => {
                vars.push((key, v));
                None
            }
            (None, None) => None,
        };
        let empty = vars.is_empty();
        replace((!empty).then_some(ctx));
        // Dropped with the context installed again: its `Drop` may use it.
        drop(old);
    }
}

impl<T: Clone + 'static> ContextVar<T> {
    /// A clone of the variable's value in the current context.
    pub fn get(&'static self) -> Option<T> {
        self.with(|v| v.cloned())
    }
}

impl<T> fmt::Debug for ContextVar<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextVar")
            .field("name", &self.name)
            .finish()
    }
}
