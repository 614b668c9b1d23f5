//! What can go wrong setting up or running a search, and whose fault it is (the binary's exit
//! code follows [`Error::is_bad_input`]).

use optimizer::journal::JournalError;

use crate::dataproc::price::PriceError;
use crate::dataproc::runner::DeleteError;
use crate::dataproc::NameError;
use crate::limits::LimitError;
use crate::local::PlanError as LocalPlanError;
use crate::spacefile::SpaceFileError;

/// An error of the launch layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The space file is wrong (the message names file, line and column).
    #[error(transparent)]
    SpaceFile(#[from] SpaceFileError),
    /// The space file, the options or the environment do not fit the backend.
    #[error("{0}")]
    Setup(String),
    /// A time limit given as an option or in the environment is refused.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// A configuration the local backend cannot run (a workload parameter it cannot take).
    #[error(transparent)]
    LocalPlan(#[from] LocalPlanError),
    /// A Dataproc option names a project, region, zone or bucket that cannot be sent.
    #[error(transparent)]
    DataprocName(#[from] NameError),
    /// A Dataproc cluster of the space has no price (its disks or its workers).
    #[error(transparent)]
    ClusterPrice(#[from] PriceError),
    /// No strategy of that name.
    #[error(transparent)]
    Strategy(#[from] optimizer::UnknownStrategy),
    /// A journal given to resume or replay cannot be used for this search.
    #[error("{0}")]
    JournalInput(String),
    /// Reading or writing the journal failed (the disk, not the user's input).
    #[error("{context}: {error}")]
    Journal {
        context: &'static str,
        error: JournalError,
    },
    /// A cloud service could not be reached or refused a request.
    #[error("{0}")]
    Service(String),
    /// A Dataproc cluster could not be deleted (it is still billed).
    #[error(transparent)]
    ClusterDeletion(#[from] DeleteError),
    /// The async runtime could not be started.
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl Error {
    /// True when the user's input (a file, an option, the environment they set up) is at fault.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::SpaceFile(_)
            | Error::Setup(_)
            | Error::Limit(_)
            | Error::LocalPlan(_)
            | Error::DataprocName(_)
            | Error::ClusterPrice(_)
            | Error::Strategy(_)
            | Error::JournalInput(_) => true,
            Error::Journal { .. }
            | Error::Service(_)
            | Error::ClusterDeletion(_)
            | Error::Runtime(_) => false,
        }
    }
}
