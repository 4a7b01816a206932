//! The page's parts. Each renders a slice of the state and sends actions or requests through
//! the session context; none owns a socket.

mod container_card;
mod spec_form;
mod status_bar;
mod terminal;

pub use container_card::ContainerCard;
pub use spec_form::SpecForm;
pub use status_bar::StatusBar;
pub use terminal::TerminalPane;
