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
//! variable. Contexts stay on their thread: tasks sent to another shard
//! (`spawn_on`) and `spawn_blocking` closures start with an empty one.

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::rc::Rc;

/// A task's variables: `(variable key, value)` pairs.
pub(crate) type Context = Rc<Vec<(usize, Rc<dyn Any>)>>;

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
/// Values never cross threads: tasks started by
/// [`spawn_on`](crate::spawn_on) and closures of
/// [`spawn_blocking`](crate::spawn_blocking) begin with no values.
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
    _value: std::marker::PhantomData<fn() -> T>,
}

impl<T: 'static> ContextVar<T> {
    /// A variable named `name` (the name is for `Debug` output only).
    pub const fn new(name: &'static str) -> ContextVar<T> {
        ContextVar {
            name,
            _value: std::marker::PhantomData,
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
        // The value is an `Rc` clone: `f` may read or set variables itself.
        f(value.as_deref().and_then(|v| v.downcast_ref::<T>()))
    }

    /// Sets the variable's value in the current context; the tasks spawned
    /// from here on inherit it.
    pub fn set(&'static self, value: T) {
        self.update(Some(Rc::new(value)));
    }

    /// Removes the variable's value from the current context.
    pub fn remove(&'static self) {
        self.update(None);
    }

    fn update(&'static self, value: Option<Rc<dyn Any>>) {
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
