//! The page's parts. Each renders a slice of the state and sends actions or requests through
//! the session context; none owns a socket. [`Playground`] is the learner's page and
//! [`TrainerPage`] the trainer's; the rest are their pieces.

mod container_card;
mod container_view;
mod host_card;
mod images_panel;
mod join_form;
mod lesson_bar;
mod lesson_panel;
mod network_panel;
mod ns_matrix;
mod playground;
mod preset_bar;
mod process_tree;
mod progress_bar;
mod sparkline;
mod spec_form;
mod spectators;
mod status_bar;
mod terminal;
mod trainer_page;
mod workshop_dashboard;
mod workshop_list;

pub use container_card::ContainerCard;
pub use container_view::ContainerView;
pub use host_card::HostCard;
pub use images_panel::ImagesPanel;
pub use join_form::JoinForm;
pub use lesson_bar::LessonBar;
pub use lesson_panel::LessonPanel;
pub use network_panel::NetworkPanel;
pub use ns_matrix::NsMatrix;
pub use playground::Playground;
pub use preset_bar::PresetBar;
pub use process_tree::process_tree;
pub use progress_bar::progress_bar;
pub use sparkline::{sparkline, Series};
pub use spec_form::SpecForm;
pub use spectators::Spectators;
pub use status_bar::StatusBar;
pub use terminal::TerminalPane;
pub use trainer_page::TrainerPage;
pub use workshop_dashboard::WorkshopDashboard;
pub use workshop_list::WorkshopList;
