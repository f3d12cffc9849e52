//! One module per rule family: each holds its rule's checks and its one message.

pub mod delegated;
pub mod exclusive;
pub mod includes;
pub mod locked;
pub mod member_type;
pub mod owner;
pub mod redundant;
pub mod reference;
pub mod same_account;
pub mod schema;
pub mod scope;
pub mod subject;
pub mod window;
