//! The page's parts. Each renders a slice of the state and sends actions or requests through
//! the session context; none owns a socket.

mod container_card;
mod container_view;
mod host_card;
mod images_panel;
mod network_panel;
mod ns_matrix;
mod preset_bar;
mod process_tree;
mod sparkline;
mod spec_form;
mod status_bar;
mod terminal;

pub use container_card::ContainerCard;
pub use container_view::ContainerView;
pub use host_card::HostCard;
pub use images_panel::ImagesPanel;
pub use network_panel::NetworkPanel;
pub use ns_matrix::NsMatrix;
pub use preset_bar::PresetBar;
pub use process_tree::process_tree;
pub use sparkline::{sparkline, Series};
pub use spec_form::SpecForm;
pub use status_bar::StatusBar;
pub use terminal::TerminalPane;
