//! Ansible's filters that reshape or draw from lists, beyond the everyday ones in
//! `filters.rs`: `subelements`, `product`, `zip_longest`, `random`, `shuffle` (seeded
//! exactly as Python seeds them, see `pyrandom.rs`), and `pow`.

use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Error, ErrorKind};
use rand::seq::SliceRandom as _;
use rand::Rng as _;

use super::pyrandom::{PyRandom, Seed};

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

fn list(v: &Value, filter: &str) -> Result<Vec<Value>, Error> {
    if v.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    match v.kind() {
        ValueKind::Seq | ValueKind::Iterable => Ok(v.try_iter()?.collect()),
        ValueKind::String => Ok(v.try_iter()?.collect()),
        _ => Err(err(format!("{filter} expects a list, got {}", v.kind()))),
    }
}

/// `subelements(key, skip_missing=False)`: `[element, item]` for each item of each
/// element's list at `key` (a dotted path); the element keeps the key (unlike the lookup).
pub fn subelements(
    value: Value,
    key: String,
    skip_missing: Option<bool>,
    kw: Kwargs,
) -> Result<Value, Error> {
    let skip_missing = skip_missing
        .or(kw.get::<Option<bool>>("skip_missing")?)
        .unwrap_or(false);
    kw.assert_all_used()?;
    let elements: Vec<Value> = match value.kind() {
        ValueKind::Map => value
            .try_iter()?
            .map(|k| value.get_item(&k).unwrap_or_default())
            .collect(),
        ValueKind::Seq => value.try_iter()?.collect(),
        _ => return Err(err("obj must be a list of dicts or a nested dict")),
    };
    let mut out = Vec::new();
    for element in elements {
        let mut values = element.clone();
        let mut missing = false;
        for part in key.split('.') {
            let next = values.get_attr(part).unwrap_or_default();
            if next.is_undefined() {
                if skip_missing {
                    missing = true;
                    break;
                }
                return Err(err(format!(
                    "could not find {part:?} key in iterated item {element}"
                )));
            }
            values = next;
        }
        if missing {
            continue;
        }
        if values.kind() != ValueKind::Seq {
            return Err(err(format!(
                "the key {key:?} should point to a list, got {values}"
            )));
        }
        for item in values.try_iter()? {
            out.push(Value::from(vec![element.clone(), item]));
        }
    }
    Ok(Value::from(out))
}

/// `product(*lists, repeat=1)`: Python's `itertools.product`.
pub fn product(value: Value, others: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let repeat: usize = kw.get::<Option<usize>>("repeat")?.unwrap_or(1);
    kw.assert_all_used()?;
    let mut pools = vec![list(&value, "product")?];
    for other in others.iter() {
        pools.push(list(other, "product")?);
    }
    let pools: Vec<Vec<Value>> = std::iter::repeat_n(pools, repeat).flatten().collect();
    let mut out: Vec<Vec<Value>> = vec![Vec::new()];
    for pool in &pools {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                pool.iter().map(move |item| {
                    let mut next = prefix.clone();
                    next.push(item.clone());
                    next
                })
            })
            .collect();
    }
    Ok(Value::from(
        out.into_iter().map(Value::from).collect::<Vec<_>>(),
    ))
}

/// `zip_longest(*lists, fillvalue=None)`: Python's `itertools.zip_longest`.
pub fn zip_longest(value: Value, others: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let fill: Value = kw.get::<Option<Value>>("fillvalue")?.unwrap_or_default();
    kw.assert_all_used()?;
    let mut lists = vec![list(&value, "zip_longest")?];
    for other in others.iter() {
        lists.push(list(other, "zip_longest")?);
    }
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    let out: Vec<Value> = (0..longest)
        .map(|i| {
            Value::from(
                lists
                    .iter()
                    .map(|l| l.get(i).cloned().unwrap_or_else(|| fill.clone()))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    Ok(Value::from(out))
}

fn seed_of(seed: &Value) -> Result<Option<PyRandom>, Error> {
    if seed.is_none() || seed.is_undefined() {
        return Ok(None);
    }
    let rng = match seed.as_str() {
        Some(text) => PyRandom::new(Seed::Text(text)),
        None => match i128::try_from(seed.clone()) {
            Ok(n) => PyRandom::new(Seed::Int(n)),
            Err(_) => PyRandom::new(Seed::Text(&seed.to_string())),
        },
    };
    Ok(Some(rng))
}

/// `random(start=None, step=None, seed=None)`: a number in `range(start, end, step)` for
/// an integer, an item for a list. With a seed, the one Python's `Random(seed)` picks.
pub fn random(
    end: Value,
    start: Option<i64>,
    step: Option<i64>,
    kw: Kwargs,
) -> Result<Value, Error> {
    let start = start.or(kw.get::<Option<i64>>("start")?);
    let step = step.or(kw.get::<Option<i64>>("step")?);
    let seed: Value = kw.get::<Option<Value>>("seed")?.unwrap_or_default();
    kw.assert_all_used()?;
    let seeded = seed_of(&seed)?;
    if end.is_integer() {
        let stop = i64::try_from(end.clone())?;
        let (start, step) = (start.unwrap_or(0), step.filter(|s| *s != 0).unwrap_or(1));
        let picked = match seeded {
            Some(mut rng) => rng.randrange(start, stop, step),
            None => {
                let n = if step > 0 {
                    (stop - start + step - 1) / step
                } else {
                    (stop - start + step + 1) / step
                };
                (n > 0).then(|| start + step * rand::thread_rng().gen_range(0..n))
            }
        };
        return picked
            .map(Value::from)
            .ok_or_else(|| err(format!("empty range for random ({start}, {stop}, {step})")));
    }
    if matches!(end.kind(), ValueKind::Seq | ValueKind::String) {
        if start.is_some() || step.is_some() {
            return Err(err("start and step can only be used with integer values"));
        }
        let items = list(&end, "random")?;
        let index = match seeded {
            Some(mut rng) => rng.choice(items.len()),
            None => (!items.is_empty()).then(|| rand::thread_rng().gen_range(0..items.len())),
        };
        return index
            .map(|i| items[i].clone())
            .ok_or_else(|| err("cannot choose from an empty sequence"));
    }
    Err(err("random can only be used on sequences and integers"))
}

/// `shuffle(seed=None)`: the list in a random order (with a seed, Python's order).
pub fn shuffle(value: Value, kw: Kwargs) -> Result<Value, Error> {
    let seed: Value = kw.get::<Option<Value>>("seed")?.unwrap_or_default();
    kw.assert_all_used()?;
    let mut items = list(&value, "shuffle")?;
    // Ansible shuffles with its own seed only when the seed is truthy.
    match seed_of(&seed)?.filter(|_| seed.is_true()) {
        Some(mut rng) => rng.shuffle(&mut items),
        None => items.shuffle(&mut rand::thread_rng()),
    }
    Ok(Value::from(items))
}

/// `pow(y)`: Python's `math.pow`, always a float.
pub fn pow(x: Value, y: Value) -> Result<f64, Error> {
    let x = f64::try_from(x).map_err(|_| err("pow() can only be used on numbers"))?;
    let y = f64::try_from(y).map_err(|_| err("pow() can only be used on numbers"))?;
    Ok(x.powf(y))
}
