//! Sentences for synthetic motions, the way crowd annotators write them: a subject,
//! a verb phrase and optional details, from a large pool of paraphrases per action.
//! Each action has a disjoint *held-out* pool of verb phrases that never appears in
//! the training data, to measure generalisation to unseen wording.

use super::Action;

const SUBJECTS: &[&str] = &[
    "a person",
    "someone",
    "a man",
    "a woman",
    "the person",
    "a human",
    "a figure",
    "the subject",
    "he",
    "she",
];

/// (training verb phrases, held-out verb phrases, details) per action. Verb phrases
/// are third person singular and follow a subject.
fn pools(
    a: Action,
) -> (
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
) {
    use Action::*;
    match a {
        WalkForward => (
            &[
                "walks forward",
                "walks forwards",
                "walks straight ahead",
                "takes a few steps forward",
                "steps forward",
                "moves forward on foot",
                "strolls forward",
                "walks ahead",
                "goes forward",
                "walks in a straight line",
            ],
            &[
                "strides forward",
                "paces ahead",
                "ambles forwards",
                "advances on foot",
            ],
            &[
                "",
                " slowly",
                " at a normal pace",
                " quickly",
                " for a few steps",
                " calmly",
                " and stops",
                " casually",
            ],
        ),
        WalkBackward => (
            &[
                "walks backward",
                "walks backwards",
                "steps backwards",
                "takes a few steps back",
                "moves backwards",
                "walks back",
                "goes backwards",
                "backs up",
                "retreats backwards",
                "steps back",
            ],
            &[
                "reverses a few paces",
                "moves in reverse",
                "backpedals",
                "withdraws step by step backwards",
            ],
            &[
                "",
                " slowly",
                " carefully",
                " a few steps",
                " without turning around",
                " cautiously",
            ],
        ),
        Run => (
            &[
                "runs forward",
                "runs",
                "jogs forward",
                "runs straight ahead",
                "sprints forward",
                "jogs",
                "runs fast",
                "is running forward",
                "runs a short distance",
                "jogs ahead",
            ],
            &[
                "dashes ahead",
                "races forward",
                "hurries forward at a run",
                "bolts forwards",
            ],
            &[
                "",
                " quickly",
                " at a steady pace",
                " in a straight line",
                " for a few meters",
                " energetically",
            ],
        ),
        TurnLeft => (
            &[
                "turns left",
                "turns to the left",
                "turns around to the left",
                "rotates to the left",
                "turns left in place",
                "spins to the left",
                "makes a left turn",
                "pivots to the left",
                "turns counterclockwise",
                "turns his body left",
            ],
            &[
                "swivels leftwards",
                "wheels round to the left",
                "faces left by turning",
                "veers round to the left on the spot",
            ],
            &[
                "",
                " slowly",
                " while standing",
                " on the spot",
                " in place",
                " quickly",
            ],
        ),
        TurnRight => (
            &[
                "turns right",
                "turns to the right",
                "turns around to the right",
                "rotates to the right",
                "turns right in place",
                "spins to the right",
                "makes a right turn",
                "pivots to the right",
                "turns clockwise",
                "turns his body right",
            ],
            &[
                "swivels rightwards",
                "wheels round to the right",
                "faces right by turning",
                "veers round to the right on the spot",
            ],
            &[
                "",
                " slowly",
                " while standing",
                " on the spot",
                " in place",
                " quickly",
            ],
        ),
        Jump => (
            &[
                "jumps",
                "jumps up",
                "jumps in place",
                "jumps up and down",
                "hops up",
                "does a jump",
                "jumps on the spot",
                "jumps high",
                "performs a jump",
                "jumps with both feet",
            ],
            &[
                "springs upward",
                "leaps into the air",
                "bounds up off the ground",
                "vaults upward from standing",
            ],
            &[
                "",
                " once",
                " twice",
                " a few times",
                " vertically",
                " energetically",
            ],
        ),
        Squat => (
            &[
                "squats",
                "squats down",
                "does a squat",
                "crouches down and stands up",
                "bends the knees and squats",
                "performs a squat",
                "squats down and gets up",
                "goes down into a squat",
                "does knee bends",
                "crouches",
            ],
            &[
                "lowers the hips toward the floor and rises",
                "sinks down on bent legs",
                "dips into a deep knee bend",
                "drops into a crouch and straightens",
            ],
            &["", " once", " twice", " slowly", " a few times", " deeply"],
        ),
        WaveLeft => (
            &[
                "waves with the left hand",
                "waves the left hand",
                "waves with his left arm",
                "raises the left hand and waves",
                "waves hello with the left hand",
                "waves left-handed",
                "lifts the left arm and waves",
                "waves using the left hand",
                "greets by waving the left hand",
                "waves goodbye with the left hand",
            ],
            &[
                "signals with a left-hand wave",
                "flaps the left hand in greeting",
                "gives a wave of the left arm",
                "salutes by shaking the raised left hand",
            ],
            &[
                "",
                " a few times",
                " happily",
                " for a while",
                " at someone",
                " briefly",
            ],
        ),
        WaveRight => (
            &[
                "waves with the right hand",
                "waves the right hand",
                "waves with his right arm",
                "raises the right hand and waves",
                "waves hello with the right hand",
                "waves right-handed",
                "lifts the right arm and waves",
                "waves using the right hand",
                "greets by waving the right hand",
                "waves goodbye with the right hand",
            ],
            &[
                "signals with a right-hand wave",
                "flaps the right hand in greeting",
                "gives a wave of the right arm",
                "salutes by shaking the raised right hand",
            ],
            &[
                "",
                " a few times",
                " happily",
                " for a while",
                " at someone",
                " briefly",
            ],
        ),
        RaiseArms => (
            &[
                "raises both arms",
                "lifts both arms up",
                "raises both hands above the head",
                "puts both arms up",
                "lifts the arms over the head",
                "raises the arms",
                "stretches both arms upward",
                "holds both arms up",
                "raises both arms and lowers them",
                "lifts both hands high",
            ],
            &[
                "elevates both limbs overhead",
                "reaches skyward with both hands",
                "throws both hands in the air",
                "hoists both arms toward the ceiling",
            ],
            &[
                "",
                " slowly",
                " once",
                " twice",
                " high",
                " and brings them down",
            ],
        ),
        Kick => (
            &[
                "kicks",
                "kicks forward",
                "kicks with one leg",
                "does a kick",
                "kicks something in front",
                "performs a kick",
                "kicks the air",
                "kicks a ball",
                "kicks out",
                "gives a kick",
            ],
            &[
                "boots an imaginary ball",
                "punts forward with a foot",
                "lashes out with a foot",
                "strikes forward with the leg",
            ],
            &["", " once", " twice", " hard", " quickly", " forcefully"],
        ),
        Idle => (
            &[
                "stands still",
                "stands",
                "is standing",
                "stands in place",
                "waits",
                "stands and waits",
                "does nothing",
                "stands without moving",
                "remains standing",
                "stands idle",
            ],
            &[
                "lingers motionless",
                "loiters on the spot",
                "stays put doing nothing",
                "keeps still upright",
            ],
            &[
                "",
                " for a while",
                " quietly",
                " calmly",
                " for a few seconds",
                " relaxed",
            ],
        ),
        SitDown => (
            &[
                "sits down",
                "sits down on a chair",
                "takes a seat",
                "sits",
                "lowers himself onto a chair",
                "sits down slowly",
                "goes to sit down",
                "sits on a stool",
                "is sitting down",
                "bends down to sit",
            ],
            &[
                "settles into a seat",
                "perches on a chair",
                "plonks down onto a seat",
                "seats oneself",
            ],
            &[
                "",
                " slowly",
                " carefully",
                " and stays seated",
                " quickly",
                " gently",
            ],
        ),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Every sentence of one pool (training or held-out) for an action.
pub fn all_sentences(a: Action, held_out: bool) -> Vec<String> {
    let (train, held, details) = pools(a);
    let verbs = if held_out { held } else { train };
    let mut out = Vec::new();
    for s in SUBJECTS {
        for v in verbs {
            for d in details {
                out.push(format!("{} {v}{d}.", capitalize(s)));
            }
        }
    }
    out
}

/// Pick `n` distinct training sentences with the given random draws.
pub fn pick(a: Action, n: usize, mut draw: impl FnMut(usize) -> usize) -> Vec<String> {
    let (train, _, details) = pools(a);
    let mut out: Vec<String> = Vec::new();
    let mut guard = 0;
    while out.len() < n && guard < 100 {
        guard += 1;
        let s = SUBJECTS[draw(SUBJECTS.len())];
        let v = train[draw(train.len())];
        let d = details[draw(details.len())];
        let mut sent = format!("{} {v}{d}.", capitalize(s));
        // Annotators vary: some lowercase, some without a final period.
        match draw(6) {
            0 => sent = sent.to_lowercase(),
            1 => {
                sent.pop();
            }
            _ => {}
        }
        if !out.contains(&sent) {
            out.push(sent);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_are_large_and_held_out_is_disjoint() {
        for a in Action::ALL {
            let train = all_sentences(a, false);
            let held = all_sentences(a, true);
            assert!(train.len() >= 300, "{a:?}: {}", train.len());
            assert!(held.len() >= 100, "{a:?}: {}", held.len());
            let (tv, hv, _) = pools(a);
            for h in hv {
                assert!(
                    !tv.iter().any(|t| t == h),
                    "{a:?}: held-out verb `{h}` is also a training verb"
                );
            }
        }
    }
}
