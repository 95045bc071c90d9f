//! The simulated company of the demo: 50 Personio employees and an academy that has been in use for
//! a while (most employees already have a reteach user, some with completed courses).
//!
//! Everything is synthetic and deterministic: the same roles, ids and counts on every run, with
//! dates relative to today in the company's time zone, so the locking rule always has something
//! to decide.

use chrono::{DateTime, Duration, Months, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::sim::personio::{DateStyle, EmployeeSeed, PersonioSim};
use crate::sim::reteach::{ReteachSim, SimCustomer, SimTag};
use crate::sync::lock_window::LockWindow;

/// Employees in Personio.
pub const EMPLOYEES: usize = 50;
/// Personio value of the employee whose gender reteach has no equivalent for.
const UNKNOWN_GENDER: &str = "prefer not to say";

const FIRST_NAMES: [&str; 10] = [
    "Alex", "Berit", "Cem", "Dana", "Emil", "Frieda", "Goran", "Hanna", "Ilya", "Jule",
];
const LAST_NAMES: [&str; 5] = ["Sample", "Example", "Testmann", "Demo", "Placeholder"];
const DEPARTMENTS: [(i64, &str); 5] = [
    (281_521, "Customer Support"),
    (281_522, "Engineering"),
    (281_523, "Sales"),
    (281_524, "People & Culture"),
    (281_525, "Finance"),
];
const OFFICES: [(i64, &str); 3] = [
    (131_014, "Munich"),
    (131_015, "Berlin"),
    (131_017, "Remote"),
];
const POSITIONS: [&str; 5] = [
    "Support Agent",
    "Software Engineer",
    "Account Executive",
    "Recruiter",
    "Controller",
];
const GENDERS: [&str; 3] = ["female", "male", "diverse"];
const COURSES: [&str; 5] = [
    "Data Protection Basics",
    "Information Security Awareness",
    "Fire Safety",
    "Code of Conduct",
    "First Aid Refresher",
];

/// What the employee at a position of the generated list is, for Personio and for the academy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Active, already a linked and up-to-date reteach user.
    UpToDate,
    /// Active, linked, but changed team since reteach last heard of it.
    MovedTeam,
    /// Active, added to reteach by hand earlier (same e-mail, no Personio id yet).
    AddedByHand,
    /// Active, no reteach user yet.
    New,
    /// Active, no reteach user yet, gender value reteach does not know.
    NewUnknownGender,
    /// Handed in notice: termination date next month.
    Leaving,
    /// Terminated last month; still an unlocked reteach user.
    Terminated,
    /// Signed, starts next month; no reteach user yet.
    Starting,
    /// Fixed-term contract ending today; linked, end not yet known to reteach.
    FixedTermEndsToday,
    /// Fixed-term contract ending in half a year; no reteach user yet.
    FixedTerm,
    /// No e-mail address in Personio (reteach needs one as the login).
    NoEmail,
}

/// The role of the employee at `index` (0-based, in Personio id order).
pub fn role(index: usize) -> Role {
    match index {
        0..=24 => Role::UpToDate,
        25..=27 => Role::MovedTeam,
        28..=31 => Role::AddedByHand,
        40 => Role::NewUnknownGender,
        41 => Role::Leaving,
        42..=44 => Role::Terminated,
        45 | 46 => Role::Starting,
        47 => Role::FixedTermEndsToday,
        48 => Role::FixedTerm,
        49 => Role::NoEmail,
        _ => Role::New,
    }
}

/// Ids of what was seeded, for the report.
#[derive(Clone, Debug, Default)]
pub struct SeededCompany {
    /// Personio ids in seeding order (`index` → id).
    pub personio_ids: Vec<i64>,
    /// reteach users that existed before the first run.
    pub existing_users: usize,
    /// Completed courses with a certificate.
    pub completions: usize,
    /// Certificates whose PDF reteach is still generating.
    pub pdfs_generating: usize,
}

/// Fills both simulators. `today` is the company's calendar day; `seeded_at` is when Personio
/// last saw a change to any of these employees (before the first run, so an incremental run
/// right after it has nothing to read).
pub fn seed(
    personio: &PersonioSim,
    reteach: &ReteachSim,
    today: NaiveDate,
    tz: Tz,
    now: DateTime<Utc>,
) -> SeededCompany {
    let mut company = SeededCompany::default();
    for index in 0..EMPLOYEES {
        let employee = employee(index, today);
        let id = personio.add_employee(employee.clone());
        company.personio_ids.push(id);
        if let Some(user) = existing_user(index, id, &employee, tz) {
            reteach.add_customer(user);
            company.existing_users += 1;
        }
    }
    // A trainer from an agency: a reteach user with no Personio record.
    reteach.add_customer(SimCustomer {
        email: Some("trainer@agency.example".into()),
        first_name: Some("External".into()),
        last_name: Some("Trainer".into()),
        registered: true,
        ..SimCustomer::default()
    });
    company.existing_users += 1;
    seed_completions(reteach, today, now, &mut company);
    company
}

/// One employee in Personio's data.
fn employee(index: usize, today: NaiveDate) -> EmployeeSeed {
    let first = FIRST_NAMES[index % FIRST_NAMES.len()];
    let last = LAST_NAMES[(index / FIRST_NAMES.len()) % LAST_NAMES.len()];
    let email = format!(
        "{}.{}@acme.example",
        first.to_lowercase(),
        last.to_lowercase()
    );
    let (department_id, department) = DEPARTMENTS[index % DEPARTMENTS.len()];
    let (office_id, office) = OFFICES[index % OFFICES.len()];
    let years_ago = u32::try_from(index % 7 + 1).unwrap_or(1);
    let hired = months_before(
        today,
        12 * years_ago + u32::try_from(index % 11).unwrap_or(0),
    );
    let mut seed = EmployeeSeed::new(first, last, &email)
        .with_position(POSITIONS[index % POSITIONS.len()])
        .with_department(department_id, department)
        .with_office(office_id, office)
        .with_gender(Some(GENDERS[index % GENDERS.len()]))
        .with_hire_date(hired);
    // Personio writes dates in three shapes; the client reads them all.
    seed.date_style = match index % 3 {
        0 => DateStyle::OffsetWithColon,
        1 => DateStyle::OffsetWithoutColon,
        _ => DateStyle::Plain,
    };
    match role(index) {
        Role::NewUnknownGender => seed.with_gender(Some(UNKNOWN_GENDER)),
        Role::Leaving => seed.with_termination_date(months_after(today, 1)),
        Role::Terminated => {
            let mut seed = seed
                .with_termination_date(months_before(today, 1))
                .with_status("inactive");
            seed.last_working_day = seed.termination_date;
            seed
        }
        Role::Starting => seed
            .with_hire_date(first_of_next_month(today))
            .with_status("onboarding"),
        Role::FixedTermEndsToday => seed.with_contract_end_date(today),
        Role::FixedTerm => seed.with_contract_end_date(months_after(today, 6)),
        Role::NoEmail => seed.with_email(None),
        Role::UpToDate | Role::MovedTeam | Role::AddedByHand | Role::New => seed,
    }
}

/// The reteach user an employee already had before the first run, if any.
fn existing_user(index: usize, id: i64, employee: &EmployeeSeed, tz: Tz) -> Option<SimCustomer> {
    let linked = match role(index) {
        Role::UpToDate | Role::Terminated | Role::FixedTermEndsToday | Role::MovedTeam => true,
        Role::AddedByHand => false,
        _ => return None,
    };
    let window = LockWindow::new(employee.hire_date, None, tz);
    let mut user = SimCustomer {
        external_id: linked.then(|| id.to_string()),
        email: employee.email.clone(),
        first_name: Some(employee.first_name.clone()),
        last_name: Some(employee.last_name.clone()),
        position: employee.position.clone(),
        department: employee.department.as_ref().map(|d| d.name.clone()),
        location: employee.office.as_ref().map(|o| o.name.clone()),
        gender: employee.gender.as_deref().map(str::to_uppercase),
        set_active_at: window.set_active_at,
        registered: true,
        source: if linked { "REST_API" } else { "MANUAL" }.into(),
        ..SimCustomer::default()
    };
    // Before this resource: the academy already tagged its staff by department (a tag named like
    // the department rule's, so the resource takes it over) and the moved team by its old name
    // (a tag the resource never set, so it stays).
    let department_tag = |name: &str| SimTag {
        id: String::new(),
        name: name.to_string(),
    };
    if linked {
        user.tags = user
            .department
            .as_deref()
            .map(department_tag)
            .into_iter()
            .collect();
    }
    match role(index) {
        Role::MovedTeam => {
            user.department = Some("Old Team".into());
            user.tags = vec![department_tag("Old Team")];
        }
        Role::AddedByHand => {
            // Typed in by an admin: no dates, the position left out.
            user.set_active_at = None;
            user.position = None;
        }
        _ => {}
    }
    Some(user)
}

/// About 30 completed courses of users that existed before the first run (one PDF still being
/// generated), one course of the external trainer, and one course still in progress.
fn seed_completions(
    reteach: &ReteachSim,
    today: NaiveDate,
    now: DateTime<Utc>,
    company: &mut SeededCompany,
) {
    let learners = (0..EMPLOYEES).filter(|&index| {
        matches!(
            role(index),
            Role::UpToDate
                | Role::MovedTeam
                | Role::AddedByHand
                | Role::Terminated
                | Role::FixedTermEndsToday
        )
    });
    for (n, index) in learners.enumerate().filter(|(n, _)| n % 4 != 3) {
        let Some(email) = employee(index, today).email else {
            continue;
        };
        let course = COURSES[n % COURSES.len()];
        let days_ago = i64::try_from(2 + n * 3).unwrap_or(2);
        let completed_at = now - Duration::days(days_ago) - Duration::minutes(17 * n as i64);
        // The most recent completion: reteach has not finished rendering its PDF yet.
        let pdf_ready = n != 0;
        if reteach
            .add_completion(&email, course, completed_at, pdf_ready)
            .is_some()
        {
            company.completions += 1;
            company.pdfs_generating += usize::from(!pdf_ready);
        }
        // A second course for every fifth learner.
        if n % 5 == 1 {
            let second = COURSES[(n + 2) % COURSES.len()];
            let earlier = completed_at - Duration::days(30);
            if reteach
                .add_completion(&email, second, earlier, true)
                .is_some()
            {
                company.completions += 1;
            }
        }
    }
    if reteach
        .add_completion(
            "trainer@agency.example",
            COURSES[0],
            now - Duration::days(5),
            true,
        )
        .is_some()
    {
        company.completions += 1;
    }
    reteach.add_participation("alex.sample@acme.example", COURSES[3], "STARTED", None);
}

fn months_before(day: NaiveDate, months: u32) -> NaiveDate {
    day.checked_sub_months(Months::new(months)).unwrap_or(day)
}

fn months_after(day: NaiveDate, months: u32) -> NaiveDate {
    day.checked_add_months(Months::new(months)).unwrap_or(day)
}

fn first_of_next_month(day: NaiveDate) -> NaiveDate {
    let next = months_after(day, 1);
    NaiveDate::from_ymd_opt(
        chrono::Datelike::year(&next),
        chrono::Datelike::month(&next),
        1,
    )
    .unwrap_or(next)
}
