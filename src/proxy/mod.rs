//! `infra proxy`: follows the scheduler's event stream and keeps nginx's config in step
//! (render, write atomically, `nginx -t`, reload only on change). The nixy of the platform.
