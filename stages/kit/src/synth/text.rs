//! Sentences for synthetic motions, the way crowd annotators write them: a subject,
//! a verb phrase and optional details, from a large pool of paraphrases per action.
//! Each action has a disjoint *held-out* pool of verb phrases that never appears in
//! the training data, to measure generalisation to unseen wording.

use super::actions::Facts;
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
                "marches forward",
                "wanders forward",
                "treks ahead",
                "walks onward",
                "proceeds forward on foot",
                "walks toward the front",
                "heads forward on foot",
                "makes his way forward",
                "walks a few meters ahead",
                "walks to the front",
                "takes steps ahead",
                "walks forward normally",
                "moves ahead by walking",
                "walks on ahead",
                "saunters forward",
                "tramps forward",
                "steps ahead",
                "walks forth",
                "goes ahead on foot",
                "travels forward on foot",
            ],
            &[
                "strides forward",
                "paces ahead",
                "ambles forwards",
                "advances on foot",
                "trudges ahead",
                "plods forward",
                "hikes onward",
                "stalks forward",
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
                " steadily",
                " in a straight line",
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
                "walks in reverse",
                "takes steps backwards",
                "moves back on foot",
                "walks backwards slowly",
                "steps backward a few times",
                "goes back step by step",
                "walks rearward",
                "walks back the way he came facing forward",
                "moves rearward on foot",
                "shuffles backwards",
                "backs away",
                "walks backward carefully",
                "takes a step back",
                "steps to the rear",
                "walks toward the back",
                "retreats on foot",
                "backs off",
                "edges backwards",
                "walks back without turning",
                "goes rearward",
            ],
            &[
                "reverses a few paces",
                "moves in reverse",
                "backpedals",
                "withdraws step by step backwards",
                "retraces his steps backwards",
                "paces backward",
                "treads backwards",
                "recedes backwards on foot",
            ],
            &[
                "",
                " slowly",
                " carefully",
                " a few steps",
                " without turning around",
                " cautiously",
                " steadily",
                " a short distance",
            ],
        ),
        Run => (
            &[
                "gallops forward",
                "tears ahead at speed",
                "runs like the wind",
                "makes a dash forward",
                "moves forward very fast on foot",
                "scurries ahead",
                "sprints off ahead",
                "jogs briskly forward",
                "hurries forward",
                "rushes ahead",
                "moves forward at high speed",
                "speeds ahead",
                "runs at a fast pace",
                "hurries ahead quickly",
                "races ahead running",
                "rushes forward on foot",
                "runs forward at speed",
                "hastens forward running",
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
                "sprints",
                "runs ahead",
                "jogs a few meters",
                "runs at full speed",
                "runs quickly forward",
                "takes off running",
                "runs on",
                "sprints ahead",
                "jogs straight ahead",
                "runs in a line",
                "runs forwards",
                "goes for a run",
                "jogs onward",
                "runs off",
                "speeds forward running",
                "runs toward the front",
                "breaks into a run",
                "runs hard",
                "trots forward",
                "runs away forward",
            ],
            &[
                "dashes ahead",
                "races forward",
                "hurries forward at a run",
                "bolts forwards",
                "charges ahead",
                "zooms forward on foot",
                "scampers forward",
                "rushes onward running",
            ],
            &[
                "",
                " quickly",
                " at a steady pace",
                " in a straight line",
                " for a few meters",
                " energetically",
                " fast",
                " briefly",
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
                "turns towards the left",
                "rotates left",
                "turns around leftwards",
                "does a left turn",
                "turns the body to the left",
                "twists to the left",
                "turns left on the spot",
                "rotates counterclockwise",
                "changes direction to the left",
                "turns round to the left",
                "faces to the left",
                "turns ninety degrees left",
                "turns left while standing",
                "spins counterclockwise",
                "turns about to the left",
                "rotates his body left",
                "steps around to the left",
                "turns to face left",
                "swings around to the left",
                "turns half around to the left",
            ],
            &[
                "swivels leftwards",
                "wheels round to the left",
                "faces left by turning",
                "veers round to the left on the spot",
                "revolves to the left",
                "gyrates to the left",
                "orients himself leftward",
                "circles round to the left",
            ],
            &[
                "",
                " slowly",
                " while standing",
                " on the spot",
                " in place",
                " quickly",
                " once",
                " gradually",
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
                "turns towards the right",
                "rotates right",
                "turns around rightwards",
                "does a right turn",
                "turns the body to the right",
                "twists to the right",
                "turns right on the spot",
                "rotates clockwise",
                "changes direction to the right",
                "turns round to the right",
                "faces to the right",
                "turns ninety degrees right",
                "turns right while standing",
                "spins clockwise",
                "turns about to the right",
                "rotates his body right",
                "steps around to the right",
                "turns to face right",
                "swings around to the right",
                "turns half around to the right",
            ],
            &[
                "swivels rightwards",
                "wheels round to the right",
                "faces right by turning",
                "veers round to the right on the spot",
                "revolves to the right",
                "gyrates to the right",
                "orients himself rightward",
                "circles round to the right",
            ],
            &[
                "",
                " slowly",
                " while standing",
                " on the spot",
                " in place",
                " quickly",
                " once",
                " gradually",
            ],
        ),
        Jump => (
            &[
                "leaps up",
                "bounces up and down",
                "takes off from the ground with both feet",
                "leaps on the spot",
                "pushes off both feet into the air",
                "bounces into the air",
                "springs up",
                "leaps off the floor",
                "jumps off both feet",
                "hops off the floor",
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
                "jumps into the air",
                "jumps straight up",
                "hops in place",
                "jumps upward",
                "does a vertical jump",
                "jumps off the ground",
                "hops on both feet",
                "jumps and lands",
                "takes a jump",
                "jumps upwards in place",
                "hops",
                "jumps as high as possible",
                "makes a jump",
                "jumps from standing",
                "jumps up on the spot",
                "hops up and down",
                "jumps with both legs",
                "does a standing jump",
                "jumps once in place",
                "jumps and comes back down",
            ],
            &[
                "springs upward",
                "leaps into the air",
                "bounds up off the ground",
                "vaults upward from standing",
                "springs up and lands",
                "leaps up on the spot",
                "bounces up high",
                "springs off both feet",
            ],
            &[
                "",
                " once",
                " twice",
                " a few times",
                " vertically",
                " energetically",
                " high",
                " quickly",
            ],
        ),
        Squat => (
            &[
                "crouches and rises",
                "bends the knees low and comes up",
                "drops down on bent knees and rises",
                "goes down low on the legs and up",
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
                "does squats",
                "squats and rises",
                "bends his knees deeply",
                "crouches down",
                "goes into a squat and back up",
                "lowers into a squat",
                "squats down low",
                "does a deep squat",
                "bends down by bending the knees",
                "squats and stands back up",
                "performs knee bends",
                "goes down and up by bending the knees",
                "squats in place",
                "does a squat exercise",
                "crouches low and rises",
                "bends the legs and goes down",
                "squats on the spot",
                "does a full squat",
                "kneels down halfway and stands",
                "bobs down into a squat",
            ],
            &[
                "lowers the hips toward the floor and rises",
                "sinks down on bent legs",
                "dips into a deep knee bend",
                "drops into a crouch and straightens",
                "hunkers down and comes up",
                "folds at the knees and rises",
                "descends on flexed legs",
                "stoops low on bent knees",
            ],
            &[
                "",
                " once",
                " twice",
                " slowly",
                " a few times",
                " deeply",
                " carefully",
                " quickly",
            ],
        ),
        WaveLeft => (
            &[
                "shakes the raised left hand",
                "greets with the left hand",
                "signals with the left hand",
                "says hello with the left hand",
                "moves the raised left hand side to side",
                "salutes with the left hand",
                "flicks the left hand to greet someone",
                "waggles the left hand in the air",
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
                "waves his left hand",
                "waves the left arm",
                "waves with the left",
                "raises his left arm and waves",
                "waves with her left hand",
                "waves the left hand in the air",
                "waves at someone with the left hand",
                "holds up the left hand and waves",
                "waves the left hand back and forth",
                "waves with the left arm raised",
                "uses the left hand to wave",
                "waves left hand",
                "gives a left-handed wave",
                "waves hi with the left hand",
                "waves with their left hand",
                "waves the left hand side to side",
                "lifts the left hand to wave",
                "waves the left arm above the head",
                "does a wave with the left hand",
                "waves once with the left hand",
            ],
            &[
                "signals with a left-hand wave",
                "flaps the left hand in greeting",
                "gives a wave of the left arm",
                "salutes by shaking the raised left hand",
                "wiggles the raised left hand",
                "beckons with the left hand",
                "swings the lifted left hand to say hello",
                "hails someone with the left hand",
            ],
            &[
                "",
                " a few times",
                " happily",
                " for a while",
                " at someone",
                " briefly",
                " slowly",
                " enthusiastically",
            ],
        ),
        WaveRight => (
            &[
                "shakes the raised right hand",
                "greets with the right hand",
                "signals with the right hand",
                "says hello with the right hand",
                "moves the raised right hand side to side",
                "salutes with the right hand",
                "flicks the right hand to greet someone",
                "waggles the right hand in the air",
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
                "waves his right hand",
                "waves the right arm",
                "waves with the right",
                "raises his right arm and waves",
                "waves with her right hand",
                "waves the right hand in the air",
                "waves at someone with the right hand",
                "holds up the right hand and waves",
                "waves the right hand back and forth",
                "waves with the right arm raised",
                "uses the right hand to wave",
                "waves right hand",
                "gives a right-handed wave",
                "waves hi with the right hand",
                "waves with their right hand",
                "waves the right hand side to side",
                "lifts the right hand to wave",
                "waves the right arm above the head",
                "does a wave with the right hand",
                "waves once with the right hand",
            ],
            &[
                "signals with a right-hand wave",
                "flaps the right hand in greeting",
                "gives a wave of the right arm",
                "salutes by shaking the raised right hand",
                "wiggles the raised right hand",
                "beckons with the right hand",
                "swings the lifted right hand to say hello",
                "hails someone with the right hand",
            ],
            &[
                "",
                " a few times",
                " happily",
                " for a while",
                " at someone",
                " briefly",
                " slowly",
                " enthusiastically",
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
                "raises his arms",
                "lifts both arms",
                "puts his hands up",
                "raises both arms overhead",
                "lifts the arms up high",
                "raises the hands up",
                "puts both hands in the air",
                "stretches the arms up",
                "raises both arms high above the head",
                "lifts both arms above the head",
                "raises the arms up and down",
                "lifts his hands up",
                "holds his arms up high",
                "extends both arms upward",
                "raises both hands",
                "puts the arms straight up",
                "lifts both arms toward the sky",
                "raises both arms in the air",
                "stretches upward with both arms",
                "puts both arms over the head",
            ],
            &[
                "elevates both limbs overhead",
                "reaches skyward with both hands",
                "throws both hands in the air",
                "hoists both arms toward the ceiling",
                "thrusts both arms upward",
                "reaches up high with both arms",
                "hoists his hands overhead",
                "shoots both arms up",
            ],
            &[
                "",
                " slowly",
                " once",
                " twice",
                " high",
                " and brings them down",
                " quickly",
                " straight",
            ],
        ),
        Kick => (
            &[
                "strikes a ball with the foot",
                "hits something with the foot",
                "shoots a ball with one foot",
                "strikes out with the leg",
                "thrusts a foot forward",
                "kicks with force",
                "swings the foot at a ball",
                "strikes with the foot",
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
                "kicks with the left leg",
                "kicks with the right leg",
                "kicks forward with one foot",
                "kicks with his foot",
                "does a front kick",
                "kicks a leg forward",
                "kicks out with one leg",
                "kicks with the left foot",
                "kicks with the right foot",
                "swings a leg forward to kick",
                "kicks an imaginary object",
                "kicks straight ahead",
                "kicks his leg out",
                "does a forward kick",
                "kicks high",
                "kicks with a leg",
                "performs a front kick",
                "kicks at something",
                "kicks a football",
                "throws a kick forward",
            ],
            &[
                "boots an imaginary ball",
                "punts forward with a foot",
                "lashes out with a foot",
                "strikes forward with the leg",
                "boots the air in front",
                "punts something away",
                "jabs forward with a foot",
                "stomps out a forward kick",
            ],
            &[
                "",
                " once",
                " twice",
                " hard",
                " quickly",
                " forcefully",
                " a few times",
                " high",
            ],
        ),
        Idle => (
            &[
                "rests standing",
                "relaxes while standing",
                "stands resting",
                "stays on his feet",
                "remains on the spot",
                "stands still and rests",
                "keeps standing",
                "stays upright without moving",
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
                "stands still for a while",
                "just stands there",
                "stands around",
                "stands calmly",
                "stays standing",
                "waits in place",
                "stands relaxed",
                "stands upright",
                "stays still",
                "is standing still",
                "stands quietly",
                "waits standing",
                "stands motionless",
                "stays in place",
                "remains still",
                "stands and looks ahead",
                "does not move",
                "stands at rest",
                "stands straight",
                "waits patiently",
            ],
            &[
                "lingers motionless",
                "loiters on the spot",
                "stays put doing nothing",
                "keeps still upright",
                "idles on the spot",
                "tarries in place",
                "holds position quietly",
                "rests on his feet",
            ],
            &[
                "",
                " for a while",
                " quietly",
                " calmly",
                " for a few seconds",
                " relaxed",
                " patiently",
                " in place",
            ],
        ),
        SitDown => (
            &[
                "sits down to rest",
                "rests on a chair",
                "takes a seat to rest",
                "sits down on the floor behind",
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
                "sits down on a bench",
                "sits on a chair",
                "sits down on something",
                "has a seat",
                "sits down on a seat",
                "takes a seat on a chair",
                "sits down carefully",
                "lowers into a chair",
                "sits down and stays",
                "goes down to a seat",
                "sits on the chair behind",
                "sits back on a chair",
                "sits down on a box",
                "takes a seat behind",
                "sits himself down",
                "lowers her body onto a seat",
                "gets seated",
                "sits down from standing",
                "moves from standing to sitting",
                "sits on a seat",
            ],
            &[
                "settles into a seat",
                "perches on a chair",
                "plonks down onto a seat",
                "seats oneself",
                "drops into a chair",
                "settles down on a stool",
                "flops onto a seat",
                "eases into a chair",
            ],
            &[
                "",
                " slowly",
                " carefully",
                " and stays seated",
                " quickly",
                " gently",
                " tiredly",
                " calmly",
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

/// Word orders annotators use around the subject (`{S}` capitalised) and the verb
/// phrase (`{V}`, with its detail).
const TEMPLATES: &[&str] = &[
    "{S} {V}.",
    "{S} {V}.",
    "{S} {V}.",
    "Here {s} {V}.",
    "In this clip {s} {V}.",
    "We see {s} who {V}.",
    "{S} {V}, then stops.",
    "The motion shows how {s} {V}.",
];

fn render(template: &str, subject: &str, verb: &str, detail: &str) -> String {
    // "We see she who ..." is not English: a pronoun is seen "how she ...".
    let template = match (template, subject) {
        ("We see {s} who {V}.", "he" | "she") => "We see how {s} {V}.",
        _ => template,
    };
    template
        .replace("{S}", &capitalize(subject))
        .replace("{s}", subject)
        .replace("{V}", &agree(subject, &format!("{verb}{detail}")))
}

/// The verb phrase's possessive and reflexive pronouns in the subject's gender
/// ("she turns to his right" -> "her right"); neutral subjects keep them as written.
fn agree(subject: &str, phrase: &str) -> String {
    let map: &[(&str, &str)] = match subject {
        "she" | "a woman" => &[("his", "her"), ("himself", "herself")],
        "he" | "a man" => &[("her", "his"), ("herself", "himself")],
        _ => return phrase.to_string(),
    };
    phrase
        .split(' ')
        .map(|w| {
            map.iter()
                .find(|(from, _)| *from == w)
                .map_or(w, |(_, to)| to)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every sentence of one pool (training or held-out) for an action.
pub fn all_sentences(a: Action, held_out: bool) -> Vec<String> {
    let (train, held, details) = pools(a);
    let verbs = if held_out { held } else { train };
    let mut out = Vec::new();
    for t in &TEMPLATES[2..] {
        for s in SUBJECTS {
            for v in verbs {
                for d in details {
                    out.push(render(t, s, v, d));
                }
            }
        }
    }
    out
}

/// The words of a sentence (runs of letters).
pub(crate) fn words(s: &str) -> Vec<&str> {
    s.split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Whether a phrase (verb phrase and detail) is true of a motion with these facts:
/// a count ("once", "twice", "a few times") must be its number of repetitions, a
/// kick's side its leg, a speed word ("slowly", "quickly", "at a normal pace") its
/// place in the action's speed range, "high"/"deeply" a larger-than-middle size,
/// "ninety degrees"/"half around" its turn. Words about things a motion does not
/// have (the side of a wave is its action) are not checked.
pub fn fits(phrase: &str, f: &Facts) -> bool {
    let lower = phrase.to_lowercase();
    let words = words(&lower);
    let has = |w: &str| words.contains(&w);
    let has_seq = |seq: &str| lower.contains(seq);
    if let Some(reps) = f.reps {
        let said = if has("once") {
            Some(1)
        } else if has("twice") {
            Some(2)
        } else if has_seq("a few times") || has_seq("several times") {
            Some(3)
        } else {
            None
        };
        if said.is_some_and(|n| n != reps) {
            return false;
        }
    }
    if let Some(left) = f.kick_left {
        if (has("left") && !left) || (has("right") && left) {
            return false;
        }
    }
    if let Some(pace) = f.pace {
        let slow = has("slowly") || has("slow");
        let fast = has("quickly") || has("fast") || has("speed") || has("sprints");
        let normal = has("normal") || has("normally");
        // A jog is the slower half of running.
        let jog = has("jogs") || has("trots");
        if (slow && pace >= 0.4)
            || (fast && pace <= 0.6)
            || (normal && !(0.3..=0.7).contains(&pace))
            || (jog && pace >= 0.5)
        {
            return false;
        }
    }
    if let Some(size) = f.size {
        if (has("high") || has("deeply")) && size < 0.5 {
            return false;
        }
    }
    if let Some(turn) = f.turn {
        let quarter = std::f64::consts::FRAC_PI_2;
        if (has("ninety") && turn > 1.3 * quarter)
            || (has_seq("half around") && turn < 1.6 * quarter)
        {
            return false;
        }
    }
    true
}

/// Pick `n` distinct training sentences true of a motion with `facts`, with the
/// given random draws.
pub fn pick(
    a: Action,
    n: usize,
    facts: &Facts,
    mut draw: impl FnMut(usize) -> usize,
) -> Vec<String> {
    let (train, _, details) = pools(a);
    let mut out: Vec<String> = Vec::new();
    let mut guard = 0;
    while out.len() < n && guard < 1000 {
        guard += 1;
        let s = SUBJECTS[draw(SUBJECTS.len())];
        let v = train[draw(train.len())];
        let d = details[draw(details.len())];
        let t = TEMPLATES[draw(TEMPLATES.len())];
        if !fits(&format!("{v}{d}"), facts) {
            continue;
        }
        let mut sent = render(t, s, v, d);
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

    #[test]
    fn pronouns_agree_with_the_subject() {
        for a in Action::ALL {
            for held_out in [false, true] {
                for s in all_sentences(a, held_out) {
                    let lower = s.to_lowercase();
                    let w = words(&lower);
                    let female = w.contains(&"she") || lower.contains("a woman");
                    let male = w.contains(&"he") || lower.contains("a man");
                    if female {
                        assert!(!w.contains(&"his") && !w.contains(&"himself"), "{s}");
                    }
                    if male {
                        assert!(!w.contains(&"her") && !w.contains(&"herself"), "{s}");
                    }
                    assert!(
                        !lower.contains("see she") && !lower.contains("see he "),
                        "{s}"
                    );
                }
            }
        }
    }
}
