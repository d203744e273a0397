import { useQuery } from '@tanstack/react-query';
import { Button, Card, Checkbox, Col, Descriptions, Empty, Form, Input, InputNumber, List, Popconfirm, Row, Skeleton, Space, Table, Tag, Typography } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useParams } from 'react-router-dom';
import { api, get, type Message, type Queue } from '../api';
import { PageTitle, QueryError, useAction } from '../components';

interface MoveTask {
  taskHandle?: string;
  status: string;
  approximateNumberOfMessagesMoved: number;
  approximateNumberOfMessagesToMove: number;
  failureReason?: string;
  startedTimestamp: number;
}

const SHOWN = [
  'ApproximateNumberOfMessages',
  'ApproximateNumberOfMessagesNotVisible',
  'ApproximateNumberOfMessagesDelayed',
  'VisibilityTimeout',
  'MessageRetentionPeriod',
  'DelaySeconds',
  'ReceiveMessageWaitTimeSeconds',
  'ContentBasedDeduplication',
  'RedrivePolicy',
  'QueueArn',
];

export function QueuePage() {
  const { t } = useTranslation();
  const { name = '' } = useParams();
  const path = `/queues/${encodeURIComponent(name)}`;
  const q = useQuery({ queryKey: ['queues', name], queryFn: () => get<Queue>(path), refetchInterval: 5000 });
  const tasks = useQuery({ queryKey: ['queues', name, 'tasks'], queryFn: () => get<{ items: MoveTask[] }>(`${path}/move-tasks`), refetchInterval: 5000 });
  const [received, setReceived] = useState<Message[] | null>(null);
  const [sendForm] = Form.useForm();
  const [recvForm] = Form.useForm();
  const send = useAction((body: Record<string, unknown>) => api<{ messageId: string }>('POST', `${path}/messages`, body), {
    invalidate: [['queues', name]],
    success: (r) => t('queues.sent', { id: r.messageId }),
    onSuccess: () => sendForm.resetFields(['body']),
  });
  const receive = useAction((body: Record<string, unknown>) => api<{ items: Message[] }>('POST', `${path}/receive`, body), {
    invalidate: [['queues', name]],
    onSuccess: (r) => setReceived(r.items),
  });
  const purge = useAction(() => api('POST', `${path}/purge`), { invalidate: [['queues', name]], success: t('queues.purged') });
  const redrive = useAction(() => api('POST', `${path}/redrive`, {}), {
    invalidate: [['queues', name]],
    success: t('queues.redriveStarted'),
  });
  const fifo = q.data?.fifo;
  const attrs = q.data?.attributes ?? {};
  return (
    <>
      <PageTitle
        title={name}
        extra={
          <>
            <Popconfirm title={t('queues.confirmRedrive')} onConfirm={() => redrive.mutate()} okText={t('common.yes')} cancelText={t('common.no')}>
              <Button loading={redrive.isPending}>{t('queues.redrive')}</Button>
            </Popconfirm>
            <Popconfirm title={t('queues.confirmPurge', { name })} onConfirm={() => purge.mutate()} okText={t('queues.purge')} okButtonProps={{ danger: true }} cancelText={t('common.cancel')}>
              <Button danger loading={purge.isPending}>
                {t('queues.purge')}
              </Button>
            </Popconfirm>
          </>
        }
      />
      <QueryError error={q.error} />
      {q.isLoading ? (
        <Skeleton active />
      ) : (
        <Card style={{ marginBottom: 16 }}>
          <Descriptions size="small" column={{ xs: 1, md: 2 }}>
            <Descriptions.Item label={t('queues.type')}>{fifo ? 'FIFO' : t('queues.standard')}</Descriptions.Item>
            <Descriptions.Item label="URL">
              <Typography.Text className="yh-mono" copyable>
                {q.data?.url}
              </Typography.Text>
            </Descriptions.Item>
            {SHOWN.filter((k) => attrs[k] !== undefined).map((k) => (
              <Descriptions.Item key={k} label={t(`queues.attr.${k}`)}>
                <span className="yh-mono">{attrs[k]}</span>
              </Descriptions.Item>
            ))}
          </Descriptions>
        </Card>
      )}
      <Row gutter={[16, 16]}>
        <Col xs={24} lg={12}>
          <Card title={t('queues.send')}>
            <Form
              form={sendForm}
              layout="vertical"
              onFinish={(v) =>
                send.mutate({
                  body: v.body,
                  ...(v.delaySeconds ? { delaySeconds: v.delaySeconds } : {}),
                  ...(v.groupId ? { groupId: v.groupId } : {}),
                  ...(v.deduplicationId ? { deduplicationId: v.deduplicationId } : {}),
                })
              }
            >
              <Form.Item label={t('queues.body')} name="body" rules={[{ required: true, message: t('validation.required') }]}>
                <Input.TextArea rows={4} />
              </Form.Item>
              {fifo ? (
                <>
                  <Form.Item label={t('queues.groupId')} name="groupId" rules={[{ required: true, message: t('validation.required') }]}>
                    <Input />
                  </Form.Item>
                  <Form.Item label={t('queues.dedupId')} name="deduplicationId">
                    <Input />
                  </Form.Item>
                </>
              ) : (
                <Form.Item label={t('queues.delay')} name="delaySeconds">
                  <InputNumber min={0} max={900} addonAfter={t('units.seconds')} />
                </Form.Item>
              )}
              <Button type="primary" htmlType="submit" loading={send.isPending}>
                {t('queues.sendButton')}
              </Button>
            </Form>
          </Card>
        </Col>
        <Col xs={24} lg={12}>
          <Card title={t('queues.receive')}>
            <Form
              form={recvForm}
              layout="inline"
              initialValues={{ max: 10, peek: true, delete: false }}
              onFinish={(v) =>
                receive.mutate({
                  max: v.max,
                  waitSeconds: 1,
                  ...(v.peek ? { visibilityTimeout: 0 } : {}),
                  delete: !v.peek && v.delete,
                })
              }
            >
              <Form.Item label={t('queues.max')} name="max">
                <InputNumber min={1} max={10} />
              </Form.Item>
              <Form.Item name="peek" valuePropName="checked">
                <Checkbox>{t('queues.peek')}</Checkbox>
              </Form.Item>
              <Form.Item name="delete" valuePropName="checked">
                <Checkbox>{t('queues.deleteAfter')}</Checkbox>
              </Form.Item>
              <Button type="primary" htmlType="submit" loading={receive.isPending}>
                {t('queues.receiveButton')}
              </Button>
            </Form>
            <div style={{ marginTop: 12 }} data-testid="received">
              {received === null ? null : received.length === 0 ? (
                <Empty description={t('queues.noMessages')} />
              ) : (
                <List
                  size="small"
                  dataSource={received}
                  renderItem={(m) => (
                    <List.Item>
                      <Space direction="vertical" style={{ width: '100%' }}>
                        <Typography.Text type="secondary" className="yh-mono">
                          {m.messageId}
                        </Typography.Text>
                        <Typography.Paragraph className="yh-mono" style={{ margin: 0, whiteSpace: 'pre-wrap' }}>
                          {m.body}
                        </Typography.Paragraph>
                        <Tag>
                          {t('queues.receiveCount')}: {m.attributes.ApproximateReceiveCount ?? '-'}
                        </Tag>
                      </Space>
                    </List.Item>
                  )}
                />
              )}
            </div>
          </Card>
        </Col>
      </Row>
      {(tasks.data?.items.length ?? 0) > 0 ? (
        <Card title={t('queues.moveTasks')} style={{ marginTop: 16 }}>
          <Table<MoveTask>
            size="small"
            pagination={false}
            rowKey={(r) => `${r.taskHandle ?? ''}${r.startedTimestamp}`}
            dataSource={tasks.data?.items}
            columns={[
              { title: t('queues.taskStatus'), dataIndex: 'status' },
              { title: t('queues.moved'), render: (_, r) => `${r.approximateNumberOfMessagesMoved} / ${r.approximateNumberOfMessagesToMove}` },
              { title: t('common.created'), dataIndex: 'startedTimestamp', render: (ts: number) => new Date(ts).toLocaleString() },
              { title: t('queues.failure'), dataIndex: 'failureReason' },
            ]}
          />
        </Card>
      ) : null}
    </>
  );
}
