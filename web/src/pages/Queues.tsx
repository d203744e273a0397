import { PlusOutlined } from '@ant-design/icons';
import { useQuery } from '@tanstack/react-query';
import { Button, Checkbox, Form, Input, InputNumber, Modal, Popconfirm, Select, Tag } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useNavigate } from 'react-router-dom';
import { api, get, type Page, type Queue, qs } from '../api';
import { CursorTable, formatTime, PageTitle, useAction } from '../components';

function CreateQueueModal({ onClose }: { onClose: () => void }) {
  const { t } = useTranslation();
  const nav = useNavigate();
  const [form] = Form.useForm();
  const fifo = Form.useWatch('fifo', form) as boolean | undefined;
  const all = useQuery({ queryKey: ['queues', 'all'], queryFn: () => get<Page<Queue>>('/queues') });
  const create = useAction((body: { name: string; attributes: Record<string, string> }) => api<Queue>('POST', '/queues', body), {
    invalidate: [['queues']],
    success: t('queues.created'),
    onSuccess: (q) => {
      onClose();
      nav(`/queues/${encodeURIComponent(q.name)}`);
    },
  });
  const submit = (v: Record<string, unknown>) => {
    const attributes: Record<string, string> = {};
    let name = String(v.name);
    if (v.fifo) {
      if (!name.endsWith('.fifo')) name += '.fifo';
      attributes.FifoQueue = 'true';
      if (v.contentDedup) attributes.ContentBasedDeduplication = 'true';
    }
    for (const k of ['VisibilityTimeout', 'MessageRetentionPeriod', 'DelaySeconds', 'ReceiveMessageWaitTimeSeconds'])
      if (v[k] !== undefined && v[k] !== null) attributes[k] = String(v[k]);
    if (v.dlq) {
      const target = all.data?.items.find((q) => q.name === v.dlq);
      if (target) attributes.RedrivePolicy = JSON.stringify({ deadLetterTargetArn: target.arn, maxReceiveCount: Number(v.maxReceiveCount ?? 5) });
    }
    create.mutate({ name, attributes });
  };
  return (
    <Modal open title={t('queues.create')} onCancel={onClose} onOk={() => form.submit()} okText={t('common.create')} cancelText={t('common.cancel')} confirmLoading={create.isPending} width={600}>
      <Form form={form} layout="vertical" onFinish={submit} initialValues={{ maxReceiveCount: 5 }}>
        <Form.Item label={t('common.name')} name="name" rules={[{ required: true, message: t('validation.required') }, { pattern: /^[A-Za-z0-9_-]{1,75}(\.fifo)?$/, message: t('validation.queueName') }]}>
          <Input autoComplete="off" />
        </Form.Item>
        <Form.Item name="fifo" valuePropName="checked">
          <Checkbox>{t('queues.fifo')}</Checkbox>
        </Form.Item>
        {fifo ? (
          <Form.Item name="contentDedup" valuePropName="checked">
            <Checkbox>{t('queues.contentDedup')}</Checkbox>
          </Form.Item>
        ) : null}
        <Form.Item label={t('queues.visibilityTimeout')} name="VisibilityTimeout">
          <InputNumber min={0} max={43200} addonAfter={t('units.seconds')} placeholder="30" />
        </Form.Item>
        <Form.Item label={t('queues.retention')} name="MessageRetentionPeriod">
          <InputNumber min={60} max={1209600} addonAfter={t('units.seconds')} placeholder="345600" />
        </Form.Item>
        <Form.Item label={t('queues.delay')} name="DelaySeconds">
          <InputNumber min={0} max={900} addonAfter={t('units.seconds')} placeholder="0" />
        </Form.Item>
        <Form.Item label={t('queues.dlq')} name="dlq" extra={t('queues.dlqHint')}>
          <Select
            allowClear
            options={(all.data?.items ?? []).filter((q) => !!q.fifo === !!fifo).map((q) => ({ value: q.name, label: q.name }))}
          />
        </Form.Item>
        <Form.Item label={t('queues.maxReceiveCount')} name="maxReceiveCount">
          <InputNumber min={1} max={1000} />
        </Form.Item>
      </Form>
    </Modal>
  );
}

export function QueuesPage() {
  const { t } = useTranslation();
  const [creating, setCreating] = useState(false);
  const [prefix, setPrefix] = useState('');
  const del = useAction((name: string) => api('DELETE', `/queues/${encodeURIComponent(name)}`), {
    invalidate: [['queues']],
    success: t('common.deleted'),
  });
  return (
    <>
      <PageTitle
        title={t('nav.queues')}
        extra={
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setCreating(true)}>
            {t('queues.create')}
          </Button>
        }
      />
      <CursorTable<Queue>
        queryKey={['queues', 'list', prefix]}
        fetch={() => get<Page<Queue>>(`/queues${qs({ prefix })}`)}
        rowKey="name"
        filterText={(q) => q.name}
        emptyText={t('queues.empty')}
        toolbar={<Input.Search allowClear placeholder={t('queues.prefix')} aria-label={t('queues.prefix')} onSearch={setPrefix} style={{ width: 200 }} />}
        columns={[
          { title: t('common.name'), dataIndex: 'name', render: (n: string) => <Link to={`/queues/${encodeURIComponent(n)}`}>{n}</Link> },
          { title: t('queues.type'), dataIndex: 'fifo', render: (f: boolean) => <Tag color={f ? 'purple' : 'blue'}>{f ? 'FIFO' : t('queues.standard')}</Tag> },
          { title: 'URL', dataIndex: 'url', responsive: ['lg'], render: (u: string) => <span className="yh-mono">{u}</span> },
          { title: t('common.created'), dataIndex: 'createdAt', render: formatTime, responsive: ['md'] },
          {
            title: t('common.actions'),
            render: (_, q) => (
              <Popconfirm title={t('queues.confirmDelete', { name: q.name })} onConfirm={() => del.mutate(q.name)} okText={t('common.delete')} okButtonProps={{ danger: true }} cancelText={t('common.cancel')}>
                <Button size="small" danger>
                  {t('common.delete')}
                </Button>
              </Popconfirm>
            ),
          },
        ]}
      />
      {creating ? <CreateQueueModal onClose={() => setCreating(false)} /> : null}
    </>
  );
}
