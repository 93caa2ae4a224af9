// Private: reflection access to a record's body by cached schema handles. Looking a
// field up by name costs a search per access; these handles are found once.
#ifndef SAMSYNC_ENGINE_RECORD_DYNAMIC_H_
#define SAMSYNC_ENGINE_RECORD_DYNAMIC_H_

#include <capnp/dynamic.h>
#include <capnp/schema.h>

#include "samsync/record.h"
#include "samsync/record_fields.h"

namespace samsync {

// The struct of the record's type (Record.body's active member).
capnp::DynamicStruct::Reader BodyOf(const Record& record);
capnp::DynamicStruct::Reader BodyOf(schema::Record::Reader record);  // of a known type
capnp::DynamicStruct::Builder BodyOf(Record& record);

// The schema handle of `field` (one of FieldsOf(type)).
capnp::StructSchema::Field SchemaFieldOf(const FieldInfo& field);

}  // namespace samsync

#endif  // SAMSYNC_ENGINE_RECORD_DYNAMIC_H_
