# samsync domain records: what a district writes and what syncs to the city.
#
# This file is the only definition of a record's bytes. Rules:
#  - field numbers only grow; a number is never reused or renumbered;
#  - dates are UInt32 in the form yyyymmdd (20160315), 0 meaning "none";
#  - ids are 16 bytes: 48-bit milliseconds since the Unix epoch, big-endian, then
#    80 random bits, so that new records sort last (LMDB appends stay cheap);
#  - a child is never named here: `childRef` is a 16-byte pseudonym (keyed hash of the
#    personnummer); the mapping to a person lives in identity.capnp, local only;
#  - enums start with `unspecified @0` where a value is required, so that "not given"
#    can be told apart from a real value.
# The annotations below drive generic code (flags, JSON, CSV, validation, indexes);
# their ids are mirrored in engine/src/record_schema.cc.

@0xfb45af62745e16ad;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("samsync::schema");

annotation required @0xb3f1207baa7e9f50 (field) :Void;
# The field must be given (non-empty text or list, non-zero date or id, not `unspecified`).

annotation date @0xe36c8f8320f8a099 (field) :Void;
# A UInt32 (or List(UInt32)) holding yyyymmdd dates.

annotation indexDate @0xa9e38b36b9b35b01 (field) :Void;
# The record's principal date: indexed, used by --from/--to/--term filters.

annotation refersTo @0xe6dcf11630d01f03 (field) :Text;
# A Data (or List(Data)) field holding ids of records of the named type.

annotation childRef @0xc67241c9992d8f24 (field) :Void;
# A Data field holding a child reference (pseudonym).

enum Principal {
  unspecified @0;
  municipal @1;     # kommunal
  independent @2;   # fristående
}

enum SchoolForm {
  preschool @0;        # förskola
  preschoolClass @1;   # förskoleklass
  compulsory @2;       # grundskola
  upperSecondary @3;   # gymnasieskola
}

struct School {          # skola
  name @0 :Text $required;
  principal @1 :Principal $required;
  forms @2 :List(SchoolForm);
  ppssFocus @3 :Bool;                  # a PPSS focus school
  closedDate @4 :UInt32 $date;         # 0 = active
}

struct ContactAssignment {   # kontaktperson
  schoolId @0 :Data $required $refersTo("school");
  socialWorker @1 :Text $required;     # staff reference (staff id or initials)
  fromDate @2 :UInt32 $required $date $indexDate;
  toDate @3 :UInt32 $date;             # 0 = ongoing
  informedDate @4 :UInt32 $date;       # when the school was told; 0 = not yet
}

struct Agreement {           # lokal samverkansöverenskommelse
  version @0 :UInt32 $required;
  parties @1 :List(Text) $required;
  adoptedDate @2 :UInt32 $required $date $indexDate;
  revisionDates @3 :List(UInt32) $date;
}

enum MaterialForm {
  unspecified @0;
  groupMeeting @1;          # gruppmöte
  newStaffIntroduction @2;  # introduktion av nyanställda
  other @3;
}

struct MaterialDissemination {   # stödmaterial
  unit @0 :Text $required;           # unit or team reached
  date @1 :UInt32 $required $date $indexDate;
  form @2 :MaterialForm $required;
}

enum ForumKind {
  unspecified @0;
  steeringGroup @1;   # styrgrupp: at least once a term
  managers @2;        # chefsnivå: once a year
  transition @3;      # övergång förskola–skola
  localForum @4;      # lokalt samverkansforum 6–20 år: two to three a term
}

struct ForumMeeting {        # samverkansforum
  kind @0 :ForumKind $required;
  date @1 :UInt32 $required $date $indexDate;
  invitedSchoolIds @2 :List(Data) $refersTo("school");
  attendedSchoolIds @3 :List(Data) $refersTo("school");   # a subset of invited
  cancelled @4 :Bool;
}

enum FeedbackForm {
  none @0;
  meeting @1;
  phone @2;
  letter @3;
  email @4;
}

struct ConcernReport {       # orosanmälan
  schoolId @0 :Data $required $refersTo("school");
  receivedDate @1 :UInt32 $required $date $indexDate;
  childRef @2 :Data $required $childRef;
  feedbackDate @3 :UInt32 $date;       # återkoppling to the school; 0 = none yet
  feedbackForm @4 :FeedbackForm;
}

enum Programme {
  unspecified @0;
  ppss @1;      # Plan för ökad skolnärvaro / PPSS
  skolfam @2;   # SkolFam
  placed @3;    # placed child (placerat barn)
}

enum AgeBand {
  unspecified @0;
  age0to5 @1;
  age6to9 @2;
  age10to12 @3;
  age13to15 @4;
  age16to20 @5;
}

struct Enrolment {           # PPSS, SkolFam, placed child
  childRef @0 :Data $required $childRef;
  schoolId @1 :Data $required $refersTo("school");
  programme @2 :Programme $required;
  startDate @3 :UInt32 $required $date $indexDate;
  endDate @4 :UInt32 $date;            # 0 = ongoing
  ageBand @5 :AgeBand;
  hasSchoolPlan @6 :Bool;              # placed children: a skolplanering exists
}

struct FollowUp {            # uppföljning
  childRef @0 :Data $required $childRef;
  date @1 :UInt32 $required $date $indexDate;
  term @2 :Text;                       # "2016VT" or "2016HT"; derived from date if empty
  attendancePct @3 :Float32;           # 0–100
  subjectsPassedPct @4 :Float32;       # share of subjects passed, 0–100
  schoolYear @5 :UInt8;                # årskurs 0–12
  eligibleUpperSecondary @6 :Bool;     # behörig till gymnasiet
}

struct AbsenceFlag {         # olovlig frånvaro
  childRef @0 :Data $required $childRef;
  schoolId @1 :Data $required $refersTo("school");
  flaggedDate @2 :UInt32 $required $date $indexDate;
  contactedDate @3 :UInt32 $date;      # social services contacted; 0 = not yet
}

struct Record {
  id @0 :Data;          # 16 bytes, see above
  district @1 :Text;    # owning district
  body :union {         # the ordinal of each member is the record type's tag
    school @2 :School;
    contact @3 :ContactAssignment;
    agreement @4 :Agreement;
    material @5 :MaterialDissemination;
    forum @6 :ForumMeeting;
    concern @7 :ConcernReport;
    enrolment @8 :Enrolment;
    followup @9 :FollowUp;
    absence @10 :AbsenceFlag;
  }
}
