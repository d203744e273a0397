/**
 * The SQS Query protocol (API 2012-11-05, what awscli 2.9 speaks): form parameters in, XML out.
 * Parameters are flattened as the SQS model serialises them (`Attribute.1.Name`,
 * `SendMessageBatchRequestEntry.2.MessageAttribute.1.Value.StringValue`, ...); they are turned into
 * the JSON protocol's input shape so both protocols share one action table, and the output shape is
 * rendered back into the Query protocol's XML.
 */
import { el, elAttrs, type Xml, type XmlContent, xmlDocument } from '../../../platform/xml/writer.js';
import { QueueError } from '../errors.js';
import type { Input, Output, WireAction } from './actions.js';

export const SQS_XMLNS = 'http://queue.amazonaws.com/doc/2012-11-05/';
export const SQS_API_VERSION = '2012-11-05';

interface Node {
  value?: string;
  children: Map<string, Node>;
}

function tree(params: ReadonlyMap<string, string>): Node {
  const root: Node = { children: new Map() };
  for (const [name, value] of params) {
    let node = root;
    for (const part of name.split('.')) {
      let next = node.children.get(part);
      if (!next) {
        next = { children: new Map() };
        node.children.set(part, next);
      }
      node = next;
    }
    node.value = value;
  }
  return root;
}

/** Children `1`, `2`, ... of a flattened list, in index order. */
function indexed(node: Node | undefined): Node[] {
  if (!node) return [];
  const out: [number, Node][] = [];
  for (const [k, v] of node.children) {
    if (!/^[1-9]\d{0,4}$/.test(k))
      throw new QueueError('MalformedQueryString', `Invalid list index '${k}' in the request.`);
    out.push([Number(k), v]);
  }
  return out.sort((a, b) => a[0] - b[0]).map(([, v]) => v);
}

const val = (node: Node | undefined, ...path: string[]): string | undefined => {
  let n = node;
  for (const p of path) n = n?.children.get(p);
  return n?.value;
};

const first = (root: Node, names: string[]) =>
  names.map((n) => root.children.get(n)).find((n) => n !== undefined);

function list(root: Node, ...names: string[]): string[] | undefined {
  const n = first(root, names);
  if (!n) return undefined;
  return indexed(n).map((x) => x.value ?? '');
}

function pairs(root: Node, names: string[], key: string, value: string): Record<string, string> | undefined {
  const n = first(root, names);
  if (!n) return undefined;
  const out: Record<string, string> = {};
  for (const e of indexed(n)) {
    const k = val(e, key);
    if (k === undefined)
      throw new QueueError('MissingParameter', `A ${key} is missing from the request's ${names[0]} list.`);
    out[k] = val(e, value) ?? '';
  }
  return out;
}

function messageAttributes(node: Node, name: string): Record<string, unknown> | undefined {
  const n = node.children.get(name);
  if (!n) return undefined;
  const out: Record<string, unknown> = {};
  for (const e of indexed(n)) {
    const k = val(e, 'Name');
    if (k === undefined)
      throw new QueueError('MissingParameter', `The request must contain the parameter ${name}.N.Name.`);
    const v = e.children.get('Value');
    out[k] = {
      DataType: val(v, 'DataType'),
      ...(val(v, 'StringValue') !== undefined ? { StringValue: val(v, 'StringValue') } : {}),
      ...(val(v, 'BinaryValue') !== undefined ? { BinaryValue: val(v, 'BinaryValue') } : {}),
    };
  }
  return out;
}

const SCALARS = [
  'QueueUrl',
  'QueueName',
  'QueueOwnerAWSAccountId',
  'QueueNamePrefix',
  'NextToken',
  'MaxResults',
  'MessageBody',
  'DelaySeconds',
  'MessageGroupId',
  'MessageDeduplicationId',
  'MaxNumberOfMessages',
  'VisibilityTimeout',
  'WaitTimeSeconds',
  'ReceiveRequestAttemptId',
  'ReceiptHandle',
  'Label',
  'SourceArn',
  'DestinationArn',
  'MaxNumberOfMessagesPerSecond',
  'TaskHandle',
];

function messageFields(node: Node, into: Input) {
  for (const f of [
    'Id',
    'MessageBody',
    'DelaySeconds',
    'MessageGroupId',
    'MessageDeduplicationId',
    'ReceiptHandle',
    'VisibilityTimeout',
  ]) {
    const v = val(node, f);
    if (v !== undefined) into[f] = v;
  }
  const ma = messageAttributes(node, 'MessageAttribute');
  if (ma) into.MessageAttributes = ma;
  const sa = messageAttributes(node, 'MessageSystemAttribute');
  if (sa) into.MessageSystemAttributes = sa;
}

/** The JSON-protocol input of `action` from Query parameters. */
export function queryInput(action: WireAction, params: ReadonlyMap<string, string>): Input {
  const root = tree(params);
  const input: Input = {};
  for (const s of SCALARS) {
    const v = val(root, s);
    if (v !== undefined) input[s] = v;
  }
  switch (action) {
    case 'CreateQueue': {
      const attrs = pairs(root, ['Attribute', 'Attributes'], 'Name', 'Value');
      if (attrs) input.Attributes = attrs;
      const tags = pairs(root, ['Tag', 'Tags'], 'Key', 'Value');
      if (tags) input.tags = tags;
      break;
    }
    case 'SetQueueAttributes': {
      const attrs = pairs(root, ['Attribute', 'Attributes'], 'Name', 'Value');
      if (attrs) input.Attributes = attrs;
      break;
    }
    case 'GetQueueAttributes':
      input.AttributeNames = list(root, 'AttributeName', 'AttributeNames') ?? [];
      break;
    case 'SendMessage':
      messageFields(root, input);
      break;
    case 'SendMessageBatch':
    case 'DeleteMessageBatch':
    case 'ChangeMessageVisibilityBatch': {
      const n = first(root, [`${action}RequestEntry`, 'Entries']);
      input.Entries = indexed(n).map((e) => {
        const entry: Input = {};
        messageFields(e, entry);
        return entry;
      });
      break;
    }
    case 'ReceiveMessage': {
      const a = list(root, 'AttributeName', 'AttributeNames');
      if (a) input.AttributeNames = a;
      const s = list(root, 'MessageSystemAttributeName', 'MessageSystemAttributeNames');
      if (s) input.MessageSystemAttributeNames = s;
      const m = list(root, 'MessageAttributeName', 'MessageAttributeNames');
      if (m) input.MessageAttributeNames = m;
      break;
    }
    case 'TagQueue': {
      const tags = pairs(root, ['Tag', 'Tags'], 'Key', 'Value');
      if (tags) input.Tags = tags;
      break;
    }
    case 'UntagQueue':
      input.TagKeys = list(root, 'TagKey', 'TagKeys') ?? [];
      break;
    case 'AddPermission':
      input.AWSAccountIds = list(root, 'AWSAccountId', 'AWSAccountIds') ?? [];
      input.Actions = list(root, 'ActionName', 'Actions') ?? [];
      break;
  }
  return input;
}

// ---- output -------------------------------------------------------------------------------

/** Flattened list members and the element name of each item. */
const LIST_ITEM: Record<string, string> = {
  QueueUrls: 'QueueUrl',
  queueUrls: 'QueueUrl',
  Messages: 'Message',
  Failed: 'BatchResultErrorEntry',
  Results: 'ListMessageMoveTasksResultEntry',
};

function mapXml(name: string, map: Record<string, unknown>): Xml[] {
  return Object.entries(map).map(([k, v]) => {
    switch (name) {
      case 'Tags':
        return el('Tag', el('Key', k), el('Value', String(v)));
      case 'MessageAttributes': {
        const a = v as { StringValue?: string; BinaryValue?: string; DataType: string };
        return el(
          'MessageAttribute',
          el('Name', k),
          el(
            'Value',
            a.StringValue !== undefined ? el('StringValue', a.StringValue) : undefined,
            a.BinaryValue !== undefined ? el('BinaryValue', a.BinaryValue) : undefined,
            el('DataType', a.DataType),
          ),
        );
      }
      default:
        return el('Attribute', el('Name', k), el('Value', String(v)));
    }
  });
}

function membersXml(obj: Output, action: WireAction): XmlContent[] {
  const out: XmlContent[] = [];
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined || v === null) continue;
    if (Array.isArray(v)) {
      const item = k === 'Successful' ? `${action}ResultEntry` : (LIST_ITEM[k] ?? k);
      for (const x of v)
        out.push(typeof x === 'object' ? el(item, membersXml(x as Output, action)) : el(item, String(x)));
    } else if (typeof v === 'object') {
      out.push(mapXml(k, v as Record<string, unknown>));
    } else {
      out.push(el(k, typeof v === 'boolean' ? String(v) : (v as string | number)));
    }
  }
  return out;
}

/** `<ActionResponse><ActionResult>...</ActionResult><ResponseMetadata>...` for an output. */
export function queryResponseXml(action: WireAction, output: Output, requestId: string): string {
  const members = membersXml(output, action);
  const empty = Object.keys(output).length === 0;
  const alwaysResult =
    action === 'ReceiveMessage' ||
    action === 'ListQueues' ||
    action === 'GetQueueAttributes' ||
    action === 'ListQueueTags';
  return xmlDocument(
    elAttrs(
      `${action}Response`,
      { xmlns: SQS_XMLNS },
      empty && !alwaysResult ? undefined : el(`${action}Result`, members),
      el('ResponseMetadata', el('RequestId', requestId)),
    ),
  );
}

export function queryErrorXml(
  e: { fault: string; code: string; message: string },
  requestId: string,
): string {
  return xmlDocument(
    elAttrs(
      'ErrorResponse',
      { xmlns: SQS_XMLNS },
      el('Error', el('Type', e.fault), el('Code', e.code), el('Message', e.message), el('Detail')),
      el('RequestId', requestId),
    ),
  );
}
