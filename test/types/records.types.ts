/**
 * UDB records are read only through their shapes (runtime/udb/records.ts): a
 * shape is refused unless its pattern accepts every value of its record type,
 * and a reader gets the type its shape was checked against, never one it picks.
 */
import { P } from 'ts-pattern';
import { parseRecord, shapeOf, udbShapes, type ControlRecord, type NodeRecord } from '../../runtime/udb/records.ts';

const bytes = new Uint8Array();

// The type comes from the shape.
const node: NodeRecord | undefined = parseRecord(bytes, udbShapes.node);
void node;

// @ts-expect-error a control record's shape does not read a node record
const wrong: NodeRecord | undefined = parseRecord(bytes, udbShapes.control);
void wrong;

// @ts-expect-error nor can a reader name another type for it
parseRecord<NodeRecord>(bytes, udbShapes.control);

// A shape checks only fields the type always has, with the type's own values.
shapeOf<ControlRecord>()({ rolloutId: P.string, at: P.number });
// @ts-expect-error `reason` is optional in ControlRecord: a pattern requiring it would drop records without one
shapeOf<ControlRecord>()({ rolloutId: P.string, reason: P.string });
// @ts-expect-error `command` has four values, not one
shapeOf<ControlRecord>()({ command: 'pause' });
