//! A realistic, reproducible company for demos, benchmarks and tests: varied departments and
//! offices, genders including values reteach does not know, terminated employees, future hires,
//! fixed-term contracts and a few records with edge cases.

use chrono::{Days, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::employee::{DateStyle, EmployeeSeed, OrgUnitStyle};
use super::{PersonioSim, PersonioSimConfig};

const FIRST_NAMES: [&str; 16] = [
    "Anna", "Ben", "Clara", "David", "Elif", "Felix", "Greta", "Hannes", "Ida", "Jonas", "Kira",
    "Luca", "Mira", "Noah", "Olga", "Paul",
];
const LAST_NAMES: [&str; 12] = [
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Yılmaz",
    "Nowak",
];
const DEPARTMENTS: [(i64, &str); 6] = [
    (281_521, "Customer Support"),
    (281_522, "Engineering"),
    (281_523, "Sales"),
    (281_524, "Marketing"),
    (281_525, "People & Culture"),
    (281_526, "Finance"),
];
const OFFICES: [(i64, &str); 4] = [
    (131_014, "Munich"),
    (131_015, "Berlin"),
    (131_016, "Hamburg"),
    (131_017, "Remote"),
];
const POSITIONS: [&str; 8] = [
    "Software Engineer",
    "Team Lead",
    "Account Executive",
    "Support Agent",
    "Recruiter",
    "Controller",
    "Designer",
    "Working Student",
];
/// Lowercase values as Personio sends them, plus values reteach has no equivalent for.
const GENDERS: [Option<&str>; 6] = [
    Some("male"),
    Some("female"),
    Some("diverse"),
    Some("female"),
    Some("male"),
    Some("unknown"),
];

impl PersonioSim {
    /// A simulator with default configuration and `employees` generated from `seed`.
    pub fn generate(employees: usize, seed: u64) -> Self {
        let sim = Self::new(PersonioSimConfig::default());
        sim.populate(employees, seed);
        sim
    }

    /// Adds `employees` generated employees (reproducible for a given `seed`).
    pub fn populate(&self, employees: usize, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let today = self.now().date_naive();
        let first_id = self.state().next_employee_id;
        for index in 0..employees {
            let mut employee = random_employee(&mut rng, index, today);
            if index > 0 && index % 7 == 0 {
                employee.supervisor_id = Some(first_id);
            }
            self.add_employee(edge_case(employee, index));
        }
    }
}

fn random_employee(rng: &mut StdRng, index: usize, today: NaiveDate) -> EmployeeSeed {
    let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
    let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
    let email = format!(
        "{}.{}.{index}@example.com",
        first.to_lowercase(),
        ascii_fold(last)
    );
    let (department_id, department) = DEPARTMENTS[rng.random_range(0..DEPARTMENTS.len())];
    let (office_id, office) = OFFICES[rng.random_range(0..OFFICES.len())];
    let hired_days_ago = rng.random_range(30..4_000u64);
    let mut employee = EmployeeSeed::new(first, last, &email)
        .with_position(POSITIONS[rng.random_range(0..POSITIONS.len())])
        .with_department(department_id, department)
        .with_office(office_id, office)
        .with_gender(GENDERS[rng.random_range(0..GENDERS.len())])
        .with_hire_date(days_before(today, hired_days_ago));
    employee.date_style = match index % 3 {
        0 => DateStyle::OffsetWithColon,
        1 => DateStyle::OffsetWithoutColon,
        _ => DateStyle::Plain,
    };
    match rng.random_range(0..100) {
        // Left the company: terminated in the past, inactive.
        0..=9 => {
            let ended = days_before(today, rng.random_range(1..hired_days_ago.max(2)));
            employee.termination_date = Some(ended);
            employee.last_working_day = Some(ended);
            employee.status = "inactive".to_string();
        }
        // Handed in notice: termination date ahead.
        10..=12 => {
            employee.termination_date = Some(days_after(today, rng.random_range(1..90)));
        }
        // Signed, starts later.
        13..=17 => {
            employee.hire_date = Some(days_after(today, rng.random_range(1..120)));
            employee.status = "onboarding".to_string();
        }
        // Fixed-term contract, no termination date.
        18..=25 => {
            employee.contract_end_date = Some(days_after(today, rng.random_range(1..365)));
        }
        // Fixed-term contract that already ran out.
        26..=27 => {
            employee.contract_end_date = Some(days_before(today, rng.random_range(1..30)));
            employee.status = "inactive".to_string();
        }
        28..=30 => employee.status = "leave".to_string(),
        _ => {}
    }
    employee
}

/// Every so often a record in one of the shapes clients trip over.
fn edge_case(employee: EmployeeSeed, index: usize) -> EmployeeSeed {
    match index % 50 {
        11 => employee.with_id_as_string(),
        17 => employee.with_org_unit_style(OrgUnitStyle::Plain),
        23 => {
            let mut employee = employee;
            employee.department = None;
            employee.office = None;
            employee
        }
        29 => employee.with_email(None),
        31 => employee.with_gender(None),
        37 => employee.with_raw_value("email", json!("   ")),
        // One impossible date per 100 employees: the client must skip just this record.
        47 if index % 100 == 47 => employee.with_raw_value("hire_date", json!("2023-02-30")),
        _ => employee,
    }
}

fn days_before(today: NaiveDate, days: u64) -> NaiveDate {
    today.checked_sub_days(Days::new(days)).unwrap_or(today)
}

fn days_after(today: NaiveDate, days: u64) -> NaiveDate {
    today.checked_add_days(Days::new(days)).unwrap_or(today)
}

/// ASCII form of a name for e-mail addresses.
fn ascii_fold(name: &str) -> String {
    name.to_lowercase()
        .replace('ü', "ue")
        .replace('ö', "oe")
        .replace('ä', "ae")
        .replace('ı', "i")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_company() {
        let a = PersonioSim::generate(60, 7);
        let b = PersonioSim::generate(60, 7);
        let seeds = |sim: &PersonioSim| {
            sim.employee_ids()
                .into_iter()
                .filter_map(|id| sim.employee(id))
                .map(|e| e.seed)
                .collect::<Vec<_>>()
        };
        assert_eq!(seeds(&a), seeds(&b));
        assert_eq!(a.employee_ids().len(), 60);
    }

    #[test]
    fn company_has_variety() {
        let sim = PersonioSim::generate(200, 1);
        let employees: Vec<_> = sim
            .employee_ids()
            .into_iter()
            .filter_map(|id| sim.employee(id))
            .collect();
        assert!(employees.iter().any(|e| e.seed.status == "inactive"));
        assert!(employees.iter().any(|e| e.seed.status == "onboarding"));
        assert!(employees.iter().any(|e| e.seed.contract_end_date.is_some()));
        assert!(employees.iter().any(|e| e.seed.email.is_none()));
        assert!(employees.iter().any(|e| e.seed.id_as_string));
        assert!(employees
            .iter()
            .any(|e| e.seed.raw_values.contains_key("hire_date")));
    }
}
